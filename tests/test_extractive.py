"""The offline extractive answerer on real passages of Payload CMS's docs (v1.6.25, MIT).

Each test is one defect a user saw (issue 15 item 6): a table row quoted without its table,
a sentence cut at "…via two ways:", a section picked on a word, only the `Nav` row of the
table whose `BeforeNavLinks` row was the answer, and an answer to a question about another
product instead of an abstention.
"""

import asyncio

from engine.index.keywords import keyword_terms
from engine.llm.base import ContextPassage, GenerationRequest
from engine.llm.extractive import ExtractiveProvider, best_passage, foreign_subject, units_of

COMPONENTS_LEAD = ("You can override a set of admin panel-wide components by providing a component to your base Payload "
                   "config's `admin.components` property. The following options are available:")
COMPONENT_ROWS = [
    ("Nav", "Contains the sidebar and mobile Nav in its entirety."),
    ("logout.Button", "A custom React component."),
    ("BeforeDashboard", "Array of components to inject into the built-in Dashboard, _before_ the default dashboard contents."),
    ("AfterDashboard", "Array of components to inject into the built-in Dashboard, _after_ the default dashboard contents."),
    ("BeforeLogin", "Array of components to inject into the built-in Login, _before_ the default login form."),
    ("AfterLogin", "Array of components to inject into the built-in Login, _after_ the default login form."),
    ("BeforeNavLinks", "Array of components to inject into the built-in Nav, _before_ the links themselves."),
    ("AfterNavLinks", "Array of components to inject into the built-in Nav, _after_ the links."),
    ("views.Account", "The Account view is used to show the currently logged in user's Account page."),
    ("views.Dashboard", "The main landing page of the Admin panel."),
    ("graphics.Icon", "Used as a graphic within the `Nav` component. Often represents a condensed version of a full logo."),
    ("graphics.Logo", "The full logo to be used in contexts like the `Login` view."),
    ("routes", "Define your own routes to add to the Payload Admin UI. [More](#custom-routes)"),
    ("providers", "Define your own provider components that will wrap the Payload Admin UI. [More](#custom-providers)"),
]
TABLE_HEAD = "| Path                         | Description |\n| ---------------------------- | ----------- |"
COMPONENTS_TABLE = TABLE_HEAD + "\n" + "\n".join(f"| **`{name}`** {' ' * (24 - len(name))}| {text} |" for name, text in COMPONENT_ROWS)

ACCESSING = """Here are some common examples of how you can use the Local API:

- Seeding data via Node seed scripts that you write and maintain
- Opening custom Express routes which feature additional functionality but still rely on Payload
- Within access control and hook functions

You can gain access to the currently running `payload` object via two ways:"""

IMPORTING = """You can import or require `payload` into your own files after it's been initialized, but you need to make sure that your `import` / `require` statements come **after** you call `payload.init()`—otherwise Payload won't have been initialized yet. That might be obvious. To us, it's usually not.

Example:

```ts
import payload from "payload";
import { CollectionAfterChangeHook } from "payload/types";

const afterChangeHook: CollectionAfterChangeHook = async () => {
  const posts = await payload.find({
    collection: "posts",
  });
};
```"""

SCRIPT = """The Local API is especially useful for running scripts

```ts
import payload from "payload";

const doAction = async (): Promise<void> => {
  await payload.init({
    secret: PAYLOAD_SECRET,
    mongoURL: MONGODB_URI,
    local: true, // Enables local mode, doesn't spin up a server or frontend
  });

  // Perform any Local API operations here
  await payload.find({
    collection: "posts",
  });
};

doAction();
```"""

GRAPHQL = """| Option | Description |
| ------ | ----------- |
| `maxComplexity` | A number used to set the maximum allowed complexity allowed by requests [More](/docs/graphql/overview#query-complexity-limits) |
| `disablePlaygroundInProduction` | A boolean that if false will enable the graphQL playground, defaults to true. |"""

DEPTH = ("Documents in Payload can have relationships to other Documents. This is true for both Collections as well as "
         "Globals. When you query a Document, you can specify the depth at which to populate any of its relationship "
         "fields either as full objects, or only their IDs.")


def answer(question: str, *passages: ContextPassage) -> str:
    request = GenerationRequest("s", "p", question, tuple(passages))
    return asyncio.run(ExtractiveProvider().generate(request)).text


def page(number: int, title: str, text: str, url: str) -> ContextPassage:
    return ContextPassage(number, title, url, text, url.split("#")[0])


def test_a_table_is_quoted_with_its_header_never_as_a_bare_row():
    passage = page(1, "Swap in your own React components › Base Component Overrides", f"{COMPONENTS_LEAD}\n\n{COMPONENTS_TABLE}",
                   "docs/admin/components.mdx#L22-L45")
    text = answer("I need to add a custom button in Nav element, the sidebar in the admin interface. "
                  "What would be the best way to do that?", passage)
    quoted = text.split("[1]\n", 1)[1]
    rows = [line for line in quoted.split("\n") if line.startswith("|")]
    assert rows[0].startswith("| Path") and rows[1].startswith("| ---")  # the header comes first
    assert "BeforeNavLinks" in quoted and "AfterNavLinks" in quoted  # the rows that answer, not only `Nav`
    assert all(line.rstrip().endswith("|") for line in rows)  # every row whole


def test_a_long_table_keeps_its_header_and_the_rows_that_match_and_says_what_it_left_out():
    long_table = TABLE_HEAD + "\n" + "\n".join(
        f"| **`option{i}`** | {'An option of the admin panel that changes how lists look. ' * 2} |" for i in range(40)
    ) + "\n| **`BeforeNavLinks`** | Array of components to inject into the built-in Nav, _before_ the links themselves. |"
    quoted = best_passage(set(keyword_terms("add a button to the nav")), long_table)
    lines = quoted.split("\n")
    assert lines[0].startswith("| Path") and lines[1].startswith("| ---")
    assert lines[2].startswith("| **`BeforeNavLinks`**")
    assert "40 more rows in the source" in quoted


def test_a_lead_in_is_quoted_with_what_it_introduces_and_never_left_dangling():
    units = units_of("The following options are available:\n\n" + COMPONENTS_TABLE)
    assert len(units) == 1 and units[0].text.endswith("| Define your own provider components that will wrap the Payload Admin UI. [More](#custom-providers) |")
    quoted = best_passage(set(keyword_terms("how can I access the payload object in a seed script")), ACCESSING)
    assert "Seeding data via Node seed scripts" in quoted and "Within access control and hook functions" in quoted
    assert not quoted.rstrip().endswith("via two ways:")  # its two ways are in other sections: don't end on it


def test_the_section_that_matches_the_question_wins_over_one_that_shares_a_word():
    importing = page(1, "Local API › Accessing payload › Importing it", IMPORTING, "docs/local-api/overview.mdx#importing-it")
    script = page(2, "Local API › Example Script using Local API", SCRIPT, "docs/local-api/overview.mdx#example-script-using-local-api")
    text = answer("How to run a REPL or one-off script? I want to mess around with Payload, kind of like a REPL. Or, "
                  "alternatively, put what I want in a script and run that instead. Is there a way to just run something "
                  "and have Payload exit immediately after that?", importing, script)
    assert "local: true" in text and "[2]" in text
    assert "Importing it" not in text  # one section per page: the one about scripts


def test_a_code_example_comes_with_its_explanation():
    quoted = best_passage(set(keyword_terms("how to run a script with payload")), SCRIPT)
    assert quoted.startswith("The Local API is especially useful for running scripts")
    assert quoted.rstrip().endswith("doAction();\n```")


def test_a_question_about_another_product_is_not_answered():
    passages = (page(1, "GraphQL Overview", GRAPHQL, "docs/graphql/overview.mdx#L20-L25"),
                page(2, "Queries › Depth", DEPTH, "docs/getting-started/concepts.mdx#depth"))
    assert answer("What is Strapi's GraphQL depth limit?", *passages) == ""
    assert answer("How do I limit query depth in Strapi?", *passages) == ""
    assert answer("What is the GraphQL depth limit?", *passages) != ""
    assert "maxComplexity" in answer("What is the GraphQL complexity limit?", *passages)


def test_a_product_named_as_where_data_comes_from_is_not_the_subject():
    script = page(1, "Local API › Example Script using Local API", SCRIPT, "docs/local-api/overview.mdx#example")
    assert foreign_subject("Which is the best way to import post from Wordpress?", [script]) is None
    assert foreign_subject("Does Contentful support webhooks?", [script]) == "Contentful"
    assert foreign_subject("How do I configure pagination in Django REST framework?", [script]) == "Django"
    assert foreign_subject("Hi @jmikrut\nDoes anyone know how Payload loads options?", [script]) is None
    assert foreign_subject("Is there a way to transpile ESM-only packages in PayloadCMS?", [script]) is None  # its own name


def test_nothing_in_common_with_the_question_is_an_abstention():
    assert answer("How do I bake sourdough bread?", page(1, "Local API", SCRIPT, "docs/local-api/overview.mdx")) == ""


def test_a_list_whose_last_item_introduces_code_that_is_not_there_loses_that_sentence_only():
    thumbnails = """You can specify how Payload retrieves admin thumbnails for your upload-enabled Collections. This property accepts two different configurations:

1. A string equal to one of your provided image size names to use for the admin panel's thumbnail (seen in the example Media collection above)
1. A function that takes the document's data and sends back a full URL to load the thumbnail. For example, to dynamically set an admin thumbnail URL, you could write a function that returns a string pointing to a different file source:"""
    quoted = best_passage(set(keyword_terms("how do I set the admin thumbnail of an image")), thumbnails)
    assert quoted.startswith("You can specify how Payload retrieves admin thumbnails")
    assert quoted.endswith("sends back a full URL to load the thumbnail.")


def test_a_lead_in_right_above_its_code_carries_it_as_one_unit():
    # No blank line between the lead-in and the fence: Markdown still renders a code block, and the answerer
    # quotes the lead-in with its code (it used to read the two as one paragraph of prose).
    units = units_of("Install it with:\n```sh\nnpm install payload\n```\n\nThen start it.")
    assert [u.kind for u in units] == ["lead+code", "prose"]
    assert units[0].text == "Install it with:\n\n```sh\nnpm install payload\n```"


def test_sections_of_one_page_are_one_page_whatever_their_links_look_like():
    # Links to the engine's own copy of a file carry the lines in the query: "…?lines=a-b#La".
    importing = ContextPassage(1, "Local API › Accessing payload › Importing it", "/source/kb/docs/local-api/overview.mdx?lines=40-60#L40",
                               IMPORTING, "docs/local-api/overview.mdx")
    script = ContextPassage(2, "Local API › Example Script using Local API", "/source/kb/docs/local-api/overview.mdx?lines=80-110#L80",
                            SCRIPT, "docs/local-api/overview.mdx")
    text = answer("How to run a REPL or one-off script? Is there a way to just run something and have Payload exit "
                  "immediately after that?", importing, script)
    assert "local: true" in text and "Importing it" not in text


def test_a_padded_table_keeps_the_rows_that_match_best_not_the_first_that_match():
    # As written in the docs: every cell padded to the widest one, so a few rows fill a quote.
    width = 200
    padded = "\n".join([f"| {'Path':<28} | {'Description':<{width}} |", f"| {'-' * 28} | {'-' * width} |"]
                       + [f"| {'**`' + name + '`**':<28} | {text:<{width}} |" for name, text in COMPONENT_ROWS])
    passage = page(1, "Swap in your own React components › Base Component Overrides", f"{COMPONENTS_LEAD}\n\n{padded}",
                   "docs/admin/components.mdx#L22-L45")
    text = answer("I need to add a custom button in Nav element, the sidebar in the admin interface. "
                  "What would be the best way to do that?", passage)
    quoted = text.split("[1]\n", 1)[1]
    rows = [line for line in quoted.split("\n") if line.startswith("|")]
    assert rows[0].startswith("| Path") and set(rows[1]) <= set("|- ")
    assert "BeforeNavLinks" in quoted and "AfterNavLinks" in quoted
    assert all(line.rstrip().endswith("|") for line in rows)
    order = [name for name, _ in COMPONENT_ROWS]
    shown = [name for name in order if f"`{name}`" in quoted]
    assert shown == sorted(shown, key=order.index)  # the rows in the table's own order


SERVER_OPTIONS = """Here is a list of all properties available to pass through `payload.init`:

**express**

**Required**. This is your Express app as shown above.

**local**

A boolean that when set to `true` tells Payload to start in local-only mode which will bypass setting up API routes. When set to `true`, `express` is not required. This is useful when running scripts that need to use Payload's local-api.

**onInit**

A function that is called immediately following startup that receives the Payload instance as it's only argument."""


def test_a_paragraph_under_a_subheading_is_quoted_with_its_subheading():
    quoted = best_passage(set(keyword_terms("how do I run a one-off script without starting the server routes")), SERVER_OPTIONS)
    assert quoted.startswith("**local**\n\nA boolean that when set to `true`")
    paragraphs = quoted.split("\n\n")
    for i, paragraph in enumerate(paragraphs):  # every option's text comes after its name
        if paragraph.startswith(("A boolean", "A function", "**Required**.")):
            assert i > 0 and paragraphs[i - 1].startswith("**") and paragraphs[i - 1].endswith("**")


STEPS = """Now that you've got a baseline Payload config, it's time to hook Payload up to an Express server.

1. Run `npm install --save --legacy-peer-deps express` if you have not done so already
1. Create a new `server.ts` file in the root directory of your app
1. Add the following code to `server.ts`:

```ts
import express from "express";

const app = express();

app.listen(3000);
```

This server doesn't do anything just yet."""


def test_numbered_steps_are_quoted_whole_with_the_code_they_end_on():
    quoted = best_passage(set(keyword_terms("how do I set up an express server for payload")), STEPS)
    assert all(step in quoted for step in ("1. Run `npm install", "1. Create a new `server.ts`", "1. Add the following code"))
    assert "app.listen(3000);\n```" in quoted


def test_an_example_quoted_besides_the_best_unit_comes_with_its_explanation():
    # A section given with its subsections: the best unit is in one, a second example in the other.
    text = ("You can gain access to the currently running `payload` object via two ways:\n\n**Importing it**\n\n"
            f"{IMPORTING}\n\n**Accessing from the req**\n\nPayload is available anywhere you have access to the Express "
            "`req` - including within your access control and hook functions.\n\nExample:\n\n```ts\nconst hook = async "
            "({ req: { payload } }) => {\n  const posts = await payload.find({ collection: \"posts\" });\n};\n```")
    quoted = best_passage(set(keyword_terms("how do I find posts with payload in a hook")), text)
    paragraphs = quoted.split("\n\n")
    for i, paragraph in enumerate(paragraphs):
        if paragraph == "Example:":
            assert i > 0 and not paragraphs[i - 1].startswith(("```", "Example:"))  # never an example on its own
    assert quoted.count("payload.find") >= 1


def test_a_long_table_leaves_out_rows_that_only_share_the_word_the_whole_table_is_about():
    rows = [f"| `option{i}` | Sets how the admin panel shows list number {i} to the editors of the site, with its columns. |"
            for i in range(12)]
    rows.insert(6, "| `dateFormat` | Global date format used for all dates in the admin panel. |")
    table = "| Option | Description |\n| --- | --- |\n" + "\n".join(rows)
    quoted = best_passage(set(keyword_terms("how do I change the date format in the admin panel")), table)
    lines = quoted.split("\n")
    assert lines[:2] == ["| Option | Description |", "| --- | --- |"]
    assert lines[2].startswith("| `dateFormat`") and "12 more rows in the source" in quoted
