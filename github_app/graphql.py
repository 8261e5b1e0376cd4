"""The GraphQL documents the App sends. Values always travel as variables, never inside the text.

Each document is validated against GitHub's published schema in the tests.
"""

DISCUSSION = """
query Discussion($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    discussion(number: $number) {
      id
      number
      title
      body
      url
      locked
      category { slug name }
      author { __typename login }
      comments(first: 100) { nodes { id body author { login } } }
    }
  }
}
"""

COMMENT = """
query Comment($id: ID!) {
  node(id: $id) {
    ... on DiscussionComment {
      id
      body
      url
      author { __typename login }
      replyTo { id replies(first: 100) { nodes { id body author { login } } } }
      replies(first: 100) { nodes { id body author { login } } }
      discussion { id number title url locked category { slug name } }
    }
  }
}
"""

THREAD_REPLIES = """
query ThreadReplies($id: ID!) {
  node(id: $id) {
    ... on DiscussionComment { id replies(first: 100) { nodes { id body author { login } } } }
  }
}
"""

ADD_COMMENT = """
mutation AddReply($input: AddDiscussionCommentInput!) {
  addDiscussionComment(input: $input) {
    comment { id url }
  }
}
"""

#: A page of a repository's discussions, least recently updated first, so the page cursor only moves forward:
#: a discussion updated after an import sorts after its cursor and is read again by the next one.
DISCUSSION_HISTORY = """
query DiscussionHistory($owner: String!, $name: String!, $first: Int!, $after: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    discussions(first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: ASC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        number
        title
        body
        url
        updatedAt
        author { __typename login }
        answer { id body author { __typename login } }
        comments(first: 50) {
          nodes {
            id
            body
            authorAssociation
            author { __typename login }
            replies(first: 20) { nodes { id body authorAssociation author { __typename login } } }
          }
        }
      }
    }
  }
}
"""
