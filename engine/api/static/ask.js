// The Ask page: post the question, stream the answer (server-sent events over fetch), then vote.
(function () {
  const form = document.getElementById("ask");
  const csrf = form.dataset.csrf;
  const result = document.getElementById("result");
  const text = document.getElementById("answer-text");
  const sources = document.getElementById("sources");
  const votes = document.getElementById("votes");
  const status = document.getElementById("vote-status");
  const nextStep = document.getElementById("next-step");
  const comment = document.getElementById("comment");
  const commentText = document.getElementById("comment-text");
  let answerId = null;
  let conversation = null;
  // Several knowledge bases: the one chosen answers; switching starts a new conversation.
  const kbChoice = document.getElementById("kb");
  if (kbChoice) {
    kbChoice.addEventListener("change", () => {
      conversation = null;
      document.querySelector("h1 .kb").textContent = kbChoice.value;
    });
  }

  function headers() {
    return { "Content-Type": "application/json", "X-CSRF-Token": csrf };
  }

  // Only http(s) links and paths on this site: a folder named "javascript:…" must never become a link.
  function safeHref(url) {
    if (typeof url !== "string") return null;
    // The engine's own views (an ingested file, a golden record) open on this site, whatever public URL it was given.
    const own = /^https?:\/\/[^/]+(\/(?:source|golden)\/.*)$/.exec(url);
    if (own) return own[1];
    return /^https?:\/\//.test(url) || /^\/(?!\/)/.test(url) ? url : null;
  }

  function show(answer) {
    answerId = answer.id;
    conversation = answer.conversation_id;
    // The server rendered the Markdown and sanitised it (markdown-it-py, then nh3): see engine/api/answer_html.py.
    if (typeof answer.html === "string") {
      text.innerHTML = answer.html;
      text.classList.remove("streaming");
    } else {
      text.textContent = answer.text;
    }
    text.classList.toggle("abstained", answer.abstained);
    nextStep.textContent = answer.abstained && answer.escalation ? answer.escalation : "";
    nextStep.hidden = !nextStep.textContent;
    sources.replaceChildren();
    for (const c of answer.citations) {
      const item = document.createElement("li");
      const label = c.heading ? `${c.title} › ${c.heading}` : c.title;
      const href = safeHref(c.url);
      if (href) {
        const link = document.createElement("a");
        link.href = href;
        link.rel = "noopener noreferrer";
        link.target = "_blank";  // the answer stays on screen while its source is read
        link.textContent = label;
        item.append(link);
      } else {
        item.append(label);
      }
      sources.append(item);
    }
    votes.hidden = !answer.id;
    status.textContent = "";
    comment.hidden = true;
    commentText.value = "";
    for (const b of votes.querySelectorAll(".vote")) choose(b, false);
  }

  function choose(button, chosen) {
    button.classList.toggle("chosen", chosen);
    button.setAttribute("aria-pressed", String(chosen));
  }

  async function sendVote(vote, note) {
    const body = { answer_id: answerId, vote };
    if (note) body.comment = note;
    const response = await fetch("/ask/feedback", {
      method: "POST", headers: headers(), credentials: "same-origin", body: JSON.stringify(body),
    });
    return response.ok;
  }

  function handle(block) {
    const event = /^event: (.*)$/m.exec(block);
    const data = /^data: (.*)$/m.exec(block);
    if (!event || !data) return;
    const payload = JSON.parse(data[1]);
    if (event[1] === "delta") text.textContent += payload.text;
    else if (event[1] === "answer") show(payload);
    else if (event[1] === "error") text.textContent = payload.message;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const question = document.getElementById("question").value.trim();
    if (!question) return;
    result.hidden = false;
    votes.hidden = true;
    comment.hidden = true;
    nextStep.hidden = true;
    text.textContent = "";
    text.classList.add("streaming");
    text.classList.remove("abstained");
    sources.replaceChildren();
    const button = document.getElementById("send");
    button.disabled = true;
    try {
      const response = await fetch("/ask/answer", {
        method: "POST", headers: headers(), credentials: "same-origin",
        body: JSON.stringify(Object.assign({ question, conversation_id: conversation }, kbChoice ? { kb: kbChoice.value } : {})),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        text.textContent = (body.error && body.error.message) || `Something went wrong (${response.status}).`;
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handle(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } finally {
      button.disabled = false;
    }
  });

  votes.addEventListener("click", async (e) => {
    const button = e.target.closest(".vote");
    if (!button || !answerId) return;
    const ok = await sendVote(button.dataset.vote);
    for (const b of votes.querySelectorAll(".vote")) choose(b, b === button);
    status.textContent = ok ? "Thanks!" : "Couldn't record that vote.";
    // A 👎 asks what was wrong, as the review docs promise; the comment goes with the same vote.
    comment.hidden = !(ok && button.dataset.vote === "down");
    if (!comment.hidden) commentText.focus();
  });

  comment.addEventListener("submit", async (e) => {
    e.preventDefault();
    const note = commentText.value.trim();
    if (!note || !answerId) return;
    const ok = await sendVote("down", note);
    status.textContent = ok ? "Thanks, the maintainers will read it." : "Couldn't send that comment.";
    if (ok) comment.hidden = true;
  });
})();
