"""The GitHub App's pure decisions: signatures, routing, whom to answer, what the reply says, backoff, settings."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from pathlib import Path

import pytest
from fakes.github import SCHEMA, github_schema
from graphql import parse, validate

from engine.answer.model import Answer, Citation
from engine.config import ConfigError, GitHubSettings, Settings
from github_app import graphql as documents
from github_app import sansio
from github_app.api import is_rate_limited, is_secondary_limit, retry_after
from github_app.config import ReplyPolicy, app_config, configured
from github_app.worker import MAX_BACKOFF_SECONDS, backoff, secondary_limit_wait

PAYLOADS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "github" / "payload-examples" / "api.github.com"
SECRET = "It's a Secret to Everybody"
needs_fixtures = pytest.mark.skipif(not (SCHEMA.is_file() and PAYLOADS.is_dir()),
                                    reason="../shared/fixtures/github (GitHub's schema and payloads) is absent")
SLUG = "firstreply-test"


def signed_headers(body: bytes, event: str = "discussion", secret: str = SECRET) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "x-github-event": event, "x-github-delivery": "d-1",
            "x-hub-signature-256": f"sha256={digest}"}


def test_githubs_documented_signature_example_verifies():
    # The example from GitHub's "Validating webhook deliveries" documentation.
    body = b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signed_headers(body)["x-hub-signature-256"] == expected


def test_a_signed_delivery_parses_and_anything_else_is_rejected_with_its_status():
    body = json.dumps({"action": "created", "zen": "Keep it logically awesome."}).encode()
    event = sansio.parse_delivery(signed_headers(body), body, SECRET)
    assert event.event == "discussion" and event.delivery_id == "d-1" and event.data["action"] == "created"

    cases = {
        "wrong secret": (signed_headers(body, secret="guess"), body, 401),
        "tampered body": (signed_headers(body), body.replace(b"created", b"deleted"), 401),
        "truncated body": (signed_headers(body), body[:-5], 401),
        "no signature": ({k: v for k, v in signed_headers(body).items() if k != "x-hub-signature-256"}, body, 401),
        "no event header": ({k: v for k, v in signed_headers(body).items() if k != "x-github-event"}, body, 400),
        "not JSON, signed": (signed_headers(b"{not json"), b"{not json", 400),
        "a JSON list, signed": (signed_headers(b"[1, 2]"), b"[1, 2]", 400),
        "form content type": ({**signed_headers(body), "content-type": "text/plain"}, body, 415),
    }
    for name, (headers, payload, status) in cases.items():
        with pytest.raises(sansio.Rejected) as rejected:
            sansio.parse_delivery(headers, payload, SECRET)
        assert rejected.value.status == status, name


def test_only_a_sha256_signature_is_accepted_and_an_odd_header_is_a_401_not_a_crash():
    body = json.dumps({"action": "created"}).encode()
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()  # gidgethub's validator accepts it
    good = signed_headers(body)["x-hub-signature-256"]
    for name, value in {"sha1 in the sha256 header": sha1, "no scheme": good.split("=", 1)[1],
                        "upper-case scheme": "SHA256=" + good.split("=", 1)[1], "non-ASCII": "sha256=\u00e9" * 10,
                        "non-ASCII after a good digest": good + "\u00e9", "empty digest": "sha256=",
                        "surrogate escapes": "sha256=\udcc3\udca9"}.items():
        with pytest.raises(sansio.Rejected) as rejected:
            sansio.parse_delivery({**signed_headers(body), "x-hub-signature-256": value}, body, SECRET)
        assert rejected.value.status == 401, name
    assert sansio.parse_delivery(signed_headers(body), body, SECRET).data == {"action": "created"}


def _payload(event: str, name: str) -> dict:
    return json.loads((PAYLOADS / event / name).read_text())


@pytest.mark.conformance
@needs_fixtures
def test_every_fixture_payload_routes_to_the_right_work():
    expected = {
        ("discussion", "created.payload.json"): "discussion_created",
        ("discussion", "answered.payload.json"): "discussion_answered",
        ("installation_repositories", "added.payload.json"): "installation_repositories",
        ("installation_repositories", "removed.payload.json"): "installation_repositories",
    }
    for path in sorted(PAYLOADS.glob("*/*.json")):
        event, payload = path.parent.name, json.loads(path.read_text())
        routed = sansio.route(event, payload, SLUG)
        if event == "installation":
            assert routed.kind == "installation", path.name
        elif event in ("discussion_comment", "issue_comment"):
            assert routed.kind is None, path.name  # none of them mentions the App
        else:
            assert routed.kind == expected.get((event, path.name)), path.name


@needs_fixtures
def test_a_comment_mentioning_the_app_is_a_mention_unless_a_bot_wrote_it():
    payload = _payload("discussion_comment", "created.payload.json")
    payload["comment"]["body"] = f"@{SLUG} how do I zoom?"
    assert sansio.route("discussion_comment", payload, SLUG).kind == "mention"
    payload["comment"]["user"] = {"login": f"{SLUG}[bot]", "type": "Bot"}
    assert sansio.route("discussion_comment", payload, SLUG).kind is None
    assert sansio.route("push", {"ref": "refs/heads/main"}, SLUG).kind is None
    assert sansio.route("ping", {"zen": "Design for failure."}, SLUG).reason == "pong"


def test_mentions_are_found_outside_code_only():
    assert sansio.mentions(f"hey @{SLUG}, help", SLUG)
    assert sansio.mentions(f"@{SLUG.upper()}[bot] help", SLUG)
    assert not sansio.mentions(f"hey @{SLUG}-other", SLUG)
    assert not sansio.mentions(f"mail me at me@{SLUG}.dev", SLUG)
    assert not sansio.mentions(f"run `@{SLUG}` like this", SLUG)
    assert not sansio.mentions(f"```\n@{SLUG}\n```", SLUG)
    assert sansio.strip_mention(f"@{SLUG} how do I zoom?", SLUG) == "how do I zoom?"


def _discussion(**changes) -> sansio.Discussion:
    values = dict(id="D_1", number=1, title="Zoom?", body="How do I zoom?", url="https://x", locked=False,
                  category_slug="q-a", category_name="Q&A", author_login="octocat", author_is_bot=False)
    values.update(changes)
    return sansio.Discussion(**values)


def test_which_discussions_are_answered():
    policy = ReplyPolicy()
    assert sansio.should_answer(_discussion(), policy, SLUG) == (True, "answer")
    assert sansio.should_answer(_discussion(category_slug="general", category_name="General"), policy, SLUG)[1] == \
        "category 'General' is not answered"
    assert not sansio.should_answer(_discussion(locked=True), policy, SLUG)[0]
    assert not sansio.should_answer(_discussion(author_is_bot=True), policy, SLUG)[0]
    assert not sansio.should_answer(_discussion(author_login=SLUG), policy, SLUG)[0]
    every_category = ReplyPolicy(categories=frozenset())
    assert sansio.should_answer(_discussion(category_slug="general", category_name="General"), every_category, SLUG)[0]
    by_name = ReplyPolicy(categories=frozenset({"q&a"}))
    assert sansio.should_answer(_discussion(), by_name, SLUG)[0]


def test_opt_in_needs_the_ticked_box_from_the_form():
    policy = ReplyPolicy(opt_in=True)
    ticked = "### Question\nHow do I zoom?\n\n### AI answer\n- [x] I want an AI-generated answer as a first response"
    unticked = ticked.replace("[x]", "[ ]")
    assert sansio.should_answer(_discussion(body=ticked), policy, SLUG)[0]
    assert sansio.should_answer(_discussion(body=unticked), policy, SLUG) == (False, "the author did not ask for an AI answer")
    assert not sansio.should_answer(_discussion(body="I want an AI-generated answer as a first response"), policy, SLUG)[0]
    question = sansio.question_text("Zoom?", ticked + "\n<!-- template note -->", policy)
    assert "AI-generated" not in question and "template note" not in question and "How do I zoom?" in question


def _answer(text: str = "Call `scene.zoom(2)` [1].") -> Answer:
    return Answer(text, [Citation(1, "Camera [basics]", "https://github.com/org/tinyviz/blob/v0.3.0/docs/guide/camera.rst#L1-L9",
                                  "docs/guide/camera.rst", "Zoom")], id="a-1")


def test_the_reply_carries_the_answer_its_sources_the_footer_and_the_marker():
    policy = ReplyPolicy(maintainer_hint="Ping @org/maintainers if not.")
    body = sansio.format_reply(_answer(), policy, "D_1")
    assert body.startswith("Call `scene.zoom(2)` [1].")
    assert "1. [Camera \\[basics\\] › Zoom](https://github.com/org/tinyviz/blob/v0.3.0/docs/guide/camera.rst#L1-L9)" in body
    assert "AI-generated first reply" in body and "Ping @org/maintainers if not." in body
    assert body.rstrip().endswith(sansio.marker("D_1"))
    assert sansio.has_reply([{"id": "C", "body": body, "author": {"login": SLUG}}], "D_1", SLUG)["id"] == "C"
    assert sansio.has_reply([{"id": "C", "body": body, "author": {"login": "mallory"}}], "D_1", SLUG) is None
    assert sansio.has_reply([{"id": "C", "body": body, "author": {"login": SLUG}}], "D_2", SLUG) is None


def test_model_text_cannot_ping_people_or_teams_but_code_is_untouched():
    text = "Ask @octocat or @org/team. Email a@b.c.\n```python\n@property\ndef x(self): ...\n```\nUse `@cache`."
    defused = sansio.defuse_mentions(text)
    assert "@\u200doctocat" in defused and "@\u200dorg/team" in defused and "a@b.c" in defused
    assert "@property" in defused and "`@cache`" in defused


def _rendered(body: str) -> tuple[str, list[str]]:
    """What GitHub shows (CommonMark, rendered by markdown-it), and the raw HTML left in it."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark")
    tokens = md.parse(body)
    html = [t.content for t in tokens if t.type == "html_block"]
    html += [c.content for t in tokens for c in t.children or [] if c.type == "html_inline"]
    return md.render(body), [h.strip() for h in html if h.strip() not in ("<sub>", "</sub>")]  # the footer's own


def _live_mentions(body: str) -> list[str]:
    """``@name`` that GitHub would notify: in rendered text, outside code and outside tags."""
    from markdown_it import MarkdownIt

    html = re.sub(r"<(pre|code)>.*?</\1>", " ", MarkdownIt("commonmark").render(body), flags=re.DOTALL)
    text = re.sub(r"<[^>]*>", " ", html).replace("&quot;", '"').replace("&amp;", "&")
    return re.findall(r"(?<!\w)@[A-Za-z0-9][\w/-]*", text)


def test_an_html_comment_or_raw_html_in_the_answer_cannot_hide_the_sources_or_the_footer():
    policy = ReplyPolicy()
    for text in ["Use `scene.zoom(2)`.\n<!--\nthe rest is hidden", "Done. <!-- hide", "<details>\n\nhidden",
                 "Fine.\n\n<div hidden>\n\nx", "Zoom: <span style='display:none'>", "<?php", "<!DOCTYPE html>",
                 "x <![CDATA[ y"]:
        body = sansio.format_reply(_answer(text), policy, "D_1")
        rendered, html = _rendered(body)
        assert html == [sansio.marker("D_1")], (text, html)  # only our own marker is HTML
        assert "<strong>Sources</strong>" in rendered and "AI-generated first reply" in rendered, text
    kept = sansio.format_reply(_answer("See <https://example.com/a> and `a <b> c`:\n```html\n<!-- ok -->\n```"),
                               policy, "D_1")
    assert "<https://example.com/a>" in kept and "`a <b> c`" in kept and "```html\n<!-- ok -->\n```" in kept
    assert "&lt;!--" in sansio.neutralise_html("a\n<!-- b") and "a &lt;b>" in sansio.neutralise_html("a <b>")


def test_escaped_backticks_are_not_code_so_the_mention_between_them_is_defused():
    for text in ["Ask \\`@org/team\\` to review.", "\\``@octocat`", "&#64;octocat says hi", "a \\@octocat",
                 "``@x` `` and @octocat", "text\n\n    @property\n\nthen @octocat"]:
        defused = sansio.defuse_mentions(text)
        assert _live_mentions(defused) == [], (text, defused)
    assert "`@cache`" in sansio.defuse_mentions("Use `@cache`.")  # real code is left alone
    assert "    @property" in sansio.defuse_mentions("para\n\n    @property\n")  # an indented block is code
    assert not sansio.mentions(f"run `@{SLUG}` please", SLUG) and sansio.mentions(f"run \\`@{SLUG}\\` please", SLUG)


def test_a_huge_answer_is_cut_to_fit_githubs_comment_limit():
    body = sansio.format_reply(_answer("word " * 30_000), ReplyPolicy(), "D_1")
    assert len(body) <= sansio.MAX_COMMENT_CHARS and body.rstrip().endswith(sansio.marker("D_1"))


def test_backoff_grows_is_jittered_capped_and_honours_retry_after():
    rng = random.Random(7)
    delays = [backoff(n, 2.0, rng=rng) for n in range(1, 6)]
    assert all(2.0 * 2 ** (n - 1) * 0.5 <= d <= 2.0 * 2 ** (n - 1) for n, d in zip(range(1, 6), delays, strict=True))
    assert backoff(40, 2.0, rng=rng) <= MAX_BACKOFF_SECONDS
    assert backoff(1, 2.0, 60.0, rng=rng) == 60.0


def test_rate_limit_responses_are_recognised_and_their_wait_read():
    assert is_rate_limited(403, {"retry-after": "30"}) and is_rate_limited(429, {})
    assert is_rate_limited(403, {"x-ratelimit-remaining": "0"}) and not is_rate_limited(403, {})
    assert retry_after({"retry-after": "30"}) == 30.0
    assert retry_after({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000"}, now=990.0) == 10.0
    assert retry_after({}) is None


def test_a_secondary_rate_limit_is_recognised_by_its_message_and_waited_out_for_at_least_a_minute_then_longer():
    message = b'{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}'
    left = {"x-ratelimit-remaining": "4987"}
    assert is_secondary_limit(403, left, message) and is_secondary_limit(429, left, b"{}")
    assert is_secondary_limit(403, {}, b'{"message": "You have triggered an abuse detection mechanism."}')
    assert not is_secondary_limit(403, left, b'{"message": "Resource not accessible by integration"}')
    assert not is_secondary_limit(403, {"retry-after": "30"}, message)  # GitHub said how long: Retry-After rules
    assert not is_secondary_limit(403, {"x-ratelimit-remaining": "0"}, message)  # the primary limit: wait for the reset
    waits = [secondary_limit_wait(n, 60.0) for n in range(1, 5)]
    assert waits[0] >= 60.0 and all(b >= 2 * a * 0.99 for a, b in zip(waits, waits[1:], strict=False))  # each with the next
    assert secondary_limit_wait(40, 60.0) <= MAX_BACKOFF_SECONDS


@needs_fixtures
def test_every_document_is_valid_against_githubs_schema_and_has_no_inline_values():
    schema = github_schema()
    for name in ("DISCUSSION", "COMMENT", "THREAD_REPLIES", "ADD_COMMENT"):
        text = getattr(documents, name)
        assert validate(schema, parse(text)) == [], name
        assert '"' not in text, name  # every value travels as a variable


# -- settings ---------------------------------------------------------------------------------------


def test_missing_app_settings_are_named_in_one_line(tmp_path):
    partial = Settings(github_app_slug="firstreply", _env_file=None).github
    assert configured(partial) and not configured(GitHubSettings(_env_file=None))
    with pytest.raises(ConfigError) as error:
        app_config(partial)
    message = str(error.value)
    assert "\n" not in message
    for name in ("FIRSTREPLY_GITHUB_APP_ID", "FIRSTREPLY_GITHUB_WEBHOOK_SECRET", "FIRSTREPLY_GITHUB_PRIVATE_KEY"):
        assert name in message


def test_a_bad_private_key_is_a_clear_error_and_secrets_stay_out_of_repr(tmp_path, rsa_key):
    base = dict(app_id=1, webhook_secret="s3cret", app_slug="firstreply", _env_file=None)  # the App's part alone
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="FIRSTREPLY_GITHUB_PRIVATE_KEY_FILE: not a PEM private key"):
        app_config(GitHubSettings(private_key_file=tmp_path / "key.pem", **base))
    with pytest.raises(ConfigError, match="can't read"):
        app_config(GitHubSettings(private_key_file=tmp_path / "missing.pem", **base))
    escaped = rsa_key.private_pem.decode().replace("\n", "\\n")  # as one line in an env file
    config = app_config(GitHubSettings(private_key=escaped, **base))
    assert config.private_key.startswith("-----BEGIN") and "s3cret" not in repr(config)
    assert config.graphql_url == f"{config.api_url}/graphql"  # derived from the REST base unless set
    with pytest.raises(ConfigError, match="FIRSTREPLY_GITHUB_APP_SLUG"):
        from engine.config import load_settings

        load_settings(github_app_slug="Not A Slug!", _env_file=None)


# -- properties ----------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), event=st.text(max_size=30), signed=st.booleans(),
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]))
def test_any_bytes_are_either_a_parsed_event_or_a_refusal_with_a_4xx(body, event, signed, content_type):
    headers = {"content-type": content_type, "x-github-event": event, "x-github-delivery": "d-1",
               "x-hub-signature-256": signed_headers(body)["x-hub-signature-256"] if signed else "sha256=00"}
    try:
        parsed = sansio.parse_delivery(headers, body, SECRET)
    except sansio.Rejected as rejected:
        assert rejected.status in (400, 401, 415)
        assert signed or rejected.status == 401  # nothing unsigned gets past the signature
        return
    assert signed and isinstance(parsed.data, dict)


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.sampled_from(["action", "discussion", "comment", "installation", "sender"]),
                               json_values, max_size=5),
       event=st.sampled_from(["discussion", "discussion_comment", "installation", "installation_repositories", "ping",
                              "push"]))
def test_routing_any_payload_shape_never_crashes(payload, event):
    routed = sansio.route(event, payload, SLUG)
    sansio.job_key(event, payload)
    assert routed.kind is None or routed.kind in ("discussion_created", "discussion_answered", "mention", "installation",
                                                   "installation_repositories")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=3000) | st.lists(st.sampled_from(["`", "\\", "@octocat", "@org/team", "<!--", "-->", "<b>", "\n",
                                                               "    ", "```", "~~~", " ", "a", "&#64;x", "<https://a.b>"]),
                                               max_size=60).map("".join),
       hint=st.text(alphabet=st.characters(blacklist_characters="@<&`\\\r\n", blacklist_categories=("Cs", "Cc")), max_size=100),
       trigger=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True))
def test_any_answer_makes_a_reply_within_githubs_limit_that_carries_its_marker_and_pings_nobody(text, hint, trigger):
    body = sansio.format_reply(Answer(text, []), ReplyPolicy(maintainer_hint=hint), trigger)
    assert len(body) <= sansio.MAX_COMMENT_CHARS and body.endswith(sansio.marker(trigger))
    assert _live_mentions(body) == [], body
    rendered, html = _rendered(body)
    assert all(h == sansio.marker(trigger) for h in html), (body, html)  # nothing but the marker is HTML
    assert "AI-generated first reply" in rendered


def push(ref: str = "refs/heads/main", repo: str = "Codertocat/Hello-World", **changes) -> dict:
    """A `push` delivery as GitHub sends it (the fields octokit/webhooks' push example has that routing reads)."""
    data = {"ref": ref, "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "created": False, "deleted": False, "forced": False,
            "base_ref": None, "commits": [], "head_commit": None,
            "repository": {"id": 186853002, "name": repo.split("/")[1], "full_name": repo, "default_branch": "main",
                           "clone_url": f"https://github.com/{repo}.git", "ssh_url": f"git@github.com:{repo}.git"},
            "pusher": {"name": "Codertocat"}, "sender": {"login": "Codertocat", "type": "User"},
            "installation": {"id": 1}}
    data.update(changes)
    return data


def test_a_push_to_a_bound_repositorys_default_branch_re_ingests_its_knowledge_base():
    sources = GitHubSettings(sources={"codertocat/hello-world": {"kb": "hello"}}, _env_file=None).sources
    update = sansio.source_update(push(), sources)
    assert update == sansio.SourceUpdate("Codertocat/Hello-World", "hello", "https://github.com/Codertocat/Hello-World.git", None)
    routed = sansio.route("push", push(), SLUG, sources)
    assert routed.kind == "reingest" and sansio.job_key("push", push()) == "source:codertocat/hello-world"

    for ignored, why in [(push("refs/heads/feature"), "ignored"), (push("refs/tags/v1.2.0"), "tag"),
                         (push(deleted=True), "deleted"), (push(repo="other/repo"), "not in FIRSTREPLY_GITHUB_SOURCES"),
                         (push("refs/pull/3/head"), "not a branch or tag")]:
        routed = sansio.route("push", ignored, SLUG, sources)
        assert routed.kind is None and why in routed.reason, (ignored["ref"], routed)
    assert sansio.route("push", push(), SLUG).kind is None  # nothing bound: pushes are acknowledged, nothing more


def test_listed_branches_and_tags_go_to_their_own_versioned_knowledge_base_from_the_configured_url():
    sources = GitHubSettings(sources={"Codertocat/Hello-World": {
        "kb": "hello", "url": "git@github.com:Codertocat/Hello-World.git", "branches": ["next"], "tags": True}},
        _env_file=None).sources
    assert sansio.source_update(push("refs/tags/v1.2.0"), sources) == sansio.SourceUpdate(
        "Codertocat/Hello-World", "hello-v1-2-0", "git@github.com:Codertocat/Hello-World.git", "v1.2.0")
    assert sansio.source_update(push("refs/heads/next"), sources).kb == "hello-next"
    assert isinstance(sansio.source_update(push("refs/heads/other"), sources), str)


@pytest.mark.parametrize("bad", [{"Hello-World": {"kb": "hello"}}, {"a/b": {"kb": "bad name"}},
                                 {"a/b": {"kb": "x", "command": "rm"}}])
def test_a_bad_sources_setting_is_refused_at_start(bad):
    with pytest.raises(ValueError):
        GitHubSettings(sources=bad, _env_file=None)
