// Montage in the browser: a chat with the agent beside the video it makes.

import { ApiError, assetUrl, openSession, request, setToken, token, upload } from "./api.js";
import { Live } from "./socket.js";
import { drawTimeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);

/** The graph's nodes in the order a run meets them, with the words people see. */
const NODES = [
  ["intent", "Understand"],
  ["analyze", "Music"],
  ["plan", "Plan"],
  ["story", "Story"],
  ["prompts", "Prompts"],
  ["assets", "Pictures"],
  ["critic", "Critic"],
  ["feedback", "Your answer"],
  ["compose", "Render"],
];
/** The choices of the settings' and the answer's menus (`<select data-choices=…>`), as the API names them. */
const CHOICES = {
  category: [
    ["music_video", "Music video"],
    ["promo", "Promo"],
    ["trailer", "Trailer"],
    ["slideshow", "Slideshow"],
    ["explainer", "Explainer"],
    ["travel", "Travel"],
    ["social", "Social"],
  ],
  mood: [
    ["upbeat", "Upbeat"],
    ["energetic", "Energetic"],
    ["calm", "Calm"],
    ["dreamy", "Dreamy"],
    ["dark", "Dark"],
    ["melancholic", "Melancholic"],
    ["epic", "Epic"],
    ["playful", "Playful"],
    ["romantic", "Romantic"],
    ["mysterious", "Mysterious"],
  ],
  pace: [
    ["slow", "Slow"],
    ["medium", "Medium"],
    ["fast", "Fast"],
  ],
};
const ENDED = ["completed", "failed", "cancelled"];
const STATUS_WORDS = {
  queued: "Queued",
  running: "Making",
  waiting: "Waiting for you",
  completed: "Ready",
  failed: "Failed",
  cancelled: "Cancelled",
};
const TOOL_TITLES = {
  create_video: "Video started",
  revise: "New version",
  regenerate_scene: "Scenes made again",
  answer_feedback: "Answered the critic",
  status: "Status",
  export: "Export",
};

const state = {
  chat: null,
  messages: new Set(),
  runId: null,
  run: null,
  nodes: new Map(),
  sceneAssets: new Map(),
  preview: null,
  attachments: [],
  format: null,
  builderDirty: false,
  streaming: null,
  cards: new Set(),
  versionViews: new Map(),
  refreshTimer: null,
};
let live = null;

/** `el("li", {class: "x"}, "text", child)`: a new element. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

function seconds(value) {
  return `${value.toFixed(1)} s`;
}

function bytes(size) {
  if (size >= 1 << 20) return `${(size / (1 << 20)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(size / 1024))} KB`;
}

// ---------------------------------------------------------------- connection and start

function showConnection(status) {
  const words = {
    connecting: "Connecting…",
    open: "Live",
    reconnecting: "Reconnecting…",
  };
  const node = $("connection");
  node.textContent = words[status];
  node.dataset.state = status;
}

function showSignIn(message = "") {
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("token").focus();
}

async function start() {
  token();
  let chats;
  try {
    chats = await request("GET", "/api/chats");
  } catch (error) {
    if (error.status === 401) return showSignIn(token() ? "That token is not valid." : "");
    $("connection").textContent = error.message;
    return;
  }
  await openSession();
  $("sign-in").hidden = true;
  fillChatList(chats);
  live = new Live(onEnvelope, showConnection);
  const wanted = new URLSearchParams(location.hash.slice(1)).get("chat");
  if (wanted) await openChat(wanted).catch(() => newChat());
}

function fillChatList(chats) {
  const list = $("chat-list");
  list.replaceChildren(el("option", { value: "" }, "Your videos…"));
  for (const chat of chats) {
    const when = new Date(chat.created_at_ms).toLocaleString();
    list.append(el("option", { value: chat.id }, `${chat.title} — ${when}`));
  }
  if (state.chat) list.value = state.chat.id;
}

// ---------------------------------------------------------------- chats

function newChat() {
  if (state.runId) live.forgetRun(state.runId);
  live.forgetChats();
  state.chat = null;
  state.messages.clear();
  state.cards.clear();
  state.streaming = null;
  $("messages").replaceChildren();
  $("chat-empty").hidden = false;
  history.replaceState(null, "", location.pathname);
  $("chat-list").value = "";
  closeRun();
  $("composer-text").focus();
}

async function openChat(id) {
  const chat = await request("GET", `/api/chats/${encodeURIComponent(id)}`);
  newChat();
  state.chat = chat;
  history.replaceState(null, "", `#chat=${chat.id}`);
  $("chat-list").value = chat.id;
  for (const message of chat.messages) addMessage(message);
  const last = chat.messages.length ? chat.messages[chat.messages.length - 1].seq : 0;
  live.watchChat(chat.id, last);
  if (chat.run) await openRun(chat.run);
}

function addMessage(message) {
  if (state.messages.has(message.seq)) return;
  state.messages.add(message.seq);
  $("chat-empty").hidden = true;
  if (message.role === "assistant" && state.streaming) {
    state.streaming.remove();
    state.streaming = null;
  }
  const item = el(
    "li",
    { class: `message ${message.role}`, "data-seq": message.seq },
    el("span", { class: "who" }, message.role === "user" ? "You" : "Montage"),
    el("p", { class: "text" }, message.content),
  );
  if (message.uploads?.length) {
    const n = message.uploads.length;
    item.append(el("p", { class: "hint" }, `${n} file${n > 1 ? "s" : ""} attached`));
  }
  for (const action of message.actions || []) item.append(actionCard(action, message.content));
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
}

/** A card for one of the agent's actions; its words only when the reply does not say them. */
function actionCard(action, reply) {
  const result = action.result || {};
  const words = result.error || result.summary || "";
  const card = el(
    "div",
    { class: `card action ${result.error ? "refused" : ""}`, "data-tool": action.tool },
    el("strong", {}, TOOL_TITLES[action.tool] || action.tool),
    words && !reply.includes(words) ? el("span", {}, words) : null,
  );
  if (result.run_id) {
    card.append(
      el("button", { type: "button", class: "link", onclick: () => openRun(result.run_id) }, "Show"),
    );
  }
  for (const video of result.videos || []) {
    card.append(el("a", { href: assetUrl(video.url), download: "" }, `Download ${video.format}`));
  }
  return card;
}

/** A card in the chat about the run (question asked, video ready), once per `key`. */
function runCard(key, kind, title, text, action) {
  if (state.cards.has(key)) return;
  state.cards.add(key);
  $("chat-empty").hidden = true;
  const card = el(
    "li",
    { class: `card run-card ${kind}`, "data-kind": kind },
    el("strong", {}, title),
    el("span", {}, text),
  );
  if (action) card.append(el("button", { type: "button", onclick: action.go }, action.label));
  $("messages").append(card);
  card.scrollIntoView({ block: "end" });
}

function onDelta(text) {
  if (!state.streaming) {
    state.streaming = el(
      "li",
      { class: "message assistant streaming", "aria-busy": "true" },
      el("span", { class: "who" }, "Montage"),
      el("p", { class: "text" }),
    );
    $("messages").append(state.streaming);
  }
  state.streaming.querySelector(".text").textContent += text;
  state.streaming.scrollIntoView({ block: "end" });
}

async function send(event) {
  event.preventDefault();
  const box = $("composer-text");
  const content = box.value.trim();
  if (state.attachments.some((a) => !a.id && !a.error)) {
    $("upload-error").textContent = "Wait for the uploads to finish.";
    return;
  }
  const uploads = state.attachments.filter((a) => a.id).map((a) => a.id);
  if (!content) {
    $("upload-error").textContent = uploads.length ? "Say what to do with the files." : "";
    return;
  }
  // Before there is a video, the settings chosen in the panel go with the request.
  const choices = state.runId ? {} : builderChoices();
  if (!choices) return;
  $("send").disabled = true;
  $("upload-error").textContent = "";
  try {
    if (!state.chat) {
      const chat = await request("POST", "/api/chats", { title: content.slice(0, 80) });
      await openChat(chat.id);
      request("GET", "/api/chats").then(fillChatList, () => {});
    }
    box.value = "";
    clearAttachments();
    const exchange = await request("POST", `/api/chats/${state.chat.id}/messages`, {
      content,
      uploads,
      ...(Object.keys(choices).length ? { choices } : {}),
    });
    addMessage(exchange.said);
    addMessage(exchange.reply);
    const started = exchange.runs[exchange.runs.length - 1];
    if (started) await openRun(started);
  } catch (error) {
    box.value = box.value || content;
    $("upload-error").textContent = error.message;
  } finally {
    $("send").disabled = false;
  }
}

// ---------------------------------------------------------------- uploads

function attach(files) {
  for (const file of files) {
    const progress = el("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
    const status = el("span", { class: "upload-status" }, "uploading");
    const entry = { file, id: null, error: null };
    const remove = el(
      "button",
      {
        type: "button",
        class: "link",
        "aria-label": `Remove ${file.name}`,
        onclick: () => {
          state.attachments = state.attachments.filter((a) => a !== entry);
          entry.item.remove();
        },
      },
      "×",
    );
    entry.item = el("li", { class: "attachment" }, el("span", {}, file.name), progress, status, remove);
    state.attachments.push(entry);
    $("attachments").append(entry.item);
    upload(file, (fraction) => {
      progress.value = fraction;
    }).then(
      (stored) => {
        entry.id = stored.id;
        progress.value = 1;
        status.textContent = stored.kind === "audio" ? "music ready" : "picture ready";
        entry.item.classList.add("ready");
      },
      (error) => {
        entry.error = error.message;
        progress.remove();
        status.textContent = `${file.name}: ${error.message}`;
        status.setAttribute("role", "alert");
        entry.item.classList.add("failed");
      },
    );
  }
}

function clearAttachments() {
  state.attachments = [];
  $("attachments").replaceChildren();
}

function setUpDrop() {
  const zone = document.querySelector(".chat");
  const overlay = $("drop-overlay");
  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  zone.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth += 1;
    overlay.hidden = false;
  });
  zone.addEventListener("dragover", (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    attach(e.dataTransfer.files);
  });
}

// ---------------------------------------------------------------- the run

function closeRun() {
  state.runId = null;
  state.run = null;
  state.nodes.clear();
  state.sceneAssets.clear();
  state.preview = null;
  state.format = null;
  state.builderDirty = false;
  for (const id of ["run", "feedback", "result", "versions-panel"]) $(id).hidden = true;
  $("player").removeAttribute("src");
  $("apply").disabled = true;
  $("builder-hint").textContent = "Set anything you already know; the rest is read from what you say in the chat.";
  $("builder").reset();
}

async function openRun(id) {
  if (state.runId === id) return;
  if (state.runId) live.forgetRun(state.runId);
  closeRun();
  state.runId = id;
  // Events first: if reading the run fails now, the next event reads it again.
  live.watchRun(id, 0);
  await refreshRun();
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => refreshRun().catch(() => {}), 150);
}

async function refreshRun() {
  const id = state.runId;
  if (!id) return;
  const run = await request("GET", `/api/runs/${id}`);
  if (state.runId !== id) return;
  state.run = run;
  renderRun();
}

function setNode(name, status) {
  const node = state.nodes.get(name) || { status: "pending", done: 0 };
  node.status = status;
  state.nodes.set(name, node);
  return node;
}

function onRunEvent(envelope) {
  const data = envelope.data;
  const order = NODES.map(([name]) => name);
  switch (envelope.type) {
    case "node.started": {
      const at = order.indexOf(data.node);
      order.forEach((name, k) => {
        const node = state.nodes.get(name);
        if (k < at && node?.status === "running") node.status = "done";
        if (k > at && node) node.status = "pending";
      });
      const node = setNode(data.node, "running");
      if (data.scene == null) node.done = 0;
      break;
    }
    case "node.finished": {
      const node = state.nodes.get(data.node) || setNode(data.node, "running");
      if (data.scene == null) node.status = "done";
      else node.done += 1;
      if (["intent", "analyze", "plan", "story", "prompts", "critic"].includes(data.node)) scheduleRefresh();
      break;
    }
    case "node.retrying":
      setNode(data.node, "retrying");
      break;
    case "node.failed":
      setNode(data.node, "failed");
      break;
    case "progress":
      showProgress(data.fraction, data.message || data.node);
      break;
    case "asset.ready":
      state.sceneAssets.set(data.scene, data.asset);
      renderScenes();
      break;
    case "preview.ready":
      state.preview = data.asset;
      renderResult();
      break;
    case "feedback.needed":
      setNode("feedback", "waiting");
      scheduleRefresh();
      break;
    case "run.completed":
    case "run.failed":
    case "run.cancelled":
      for (const [name] of NODES) {
        const node = state.nodes.get(name);
        if (envelope.type === "run.completed" && node?.status === "running") node.status = "done";
      }
      $("progress").hidden = true;
      scheduleRefresh();
      break;
    default:
      if (["critic.report", "video.ready", "run.started", "run.resumed"].includes(envelope.type)) {
        scheduleRefresh();
      }
  }
  renderNodes();
}

function showProgress(fraction, label) {
  $("progress").hidden = false;
  $("progress-bar").value = fraction;
  $("progress-label").textContent = `${label} — ${Math.round(fraction * 100)}%`;
  if (fraction >= 1) $("progress").hidden = true;
}

function renderRun() {
  const run = state.run;
  $("run").hidden = false;
  $("run-title").textContent = `Video · version ${run.version}`;
  const status = $("run-status");
  status.textContent = STATUS_WORDS[run.status] || run.status;
  status.dataset.status = run.status;
  $("cancel").hidden = ENDED.includes(run.status);
  if (run.status === "completed") {
    for (const [name] of NODES) {
      const node = state.nodes.get(name);
      if (!node || node.status === "pending") setNode(name, name === "feedback" ? "skipped" : "done");
    }
  }
  renderNodes();
  renderBuilder();
  renderTimeline();
  renderScenes();
  $("notices").replaceChildren(...run.notices.map((n) => el("li", {}, n)));
  renderFeedback();
  renderResult();
  renderVersions();
  if (run.status === "waiting" && run.question) {
    const storyboard = run.question.kind === "storyboard";
    const key = `${run.id}:${storyboard ? `storyboard:${run.question.revision}` : "question"}:${run.question.round}`;
    runCard(key, "question", storyboard ? "The storyboard is ready" : "The critic has a question", run.question.text.split("\n")[0], {
      label: "Go to the question",
      go: () => $("feedback-form").querySelector("input:checked").focus(),
    });
  }
  if (run.outputs) {
    runCard(`${run.id}:ready`, "ready", `Version ${run.version} is ready`, `${run.outputs.videos.length} video${run.outputs.videos.length > 1 ? "s" : ""}, $${run.cost.usd.toFixed(2)}`, {
      label: "Go to the video",
      go: () => $("player").focus(),
    });
  }
  if (run.status === "failed") {
    runCard(`${run.id}:failed`, "failed", "The video could not be made", run.error || "");
  }
}

function renderNodes() {
  const list = $("nodes");
  const total = state.run?.plan?.scenes.length || 0;
  list.replaceChildren(
    ...NODES.map(([name, label]) => {
      const node = state.nodes.get(name) || { status: "pending", done: 0 };
      const count = name === "assets" && node.done && total ? ` ${node.done}/${total}` : "";
      return el(
        "li",
        { class: `node ${node.status}`, "data-node": name, "data-state": node.status },
        el("span", { class: "node-label" }, label + count),
        el("span", { class: "visually-hidden" }, `: ${node.status}`),
      );
    }),
  );
}

function renderTimeline() {
  const run = state.run;
  const caption = drawTimeline($("timeline"), run.music, run.plan);
  $("timeline").setAttribute("aria-label", caption);
  $("timeline-caption").textContent = caption;
}

function renderScenes() {
  const plan = state.run?.plan;
  if (!plan) {
    $("scenes").replaceChildren();
    return;
  }
  $("scenes").replaceChildren(
    ...plan.scenes.map((scene) => {
      const thumb = scene.thumbnail || state.sceneAssets.get(scene.index);
      const picture = thumb
        ? el("img", { src: assetUrl(thumb.url), alt: `Scene ${scene.index + 1}`, loading: "lazy" })
        : el("div", { class: "placeholder", "aria-label": "Picture not made yet", role: "img" });
      const issues = scene.issues.map((issue) =>
        el(
          "li",
          { class: `issue ${issue.severity}` },
          `${issue.message} — ${issue.fix?.action === "regenerate" ? `make again: ${issue.fix.instruction}` : issue.fix?.action || ""}`,
        ),
      );
      return el(
        "li",
        { class: `scene ${scene.issues.length ? "has-issues" : ""}`, "data-scene": scene.index },
        picture,
        el(
          "p",
          {},
          el("strong", {}, `Scene ${scene.index + 1}`),
          ` ${seconds(scene.start)}–${seconds(scene.end)} · ${scene.beats} beat${scene.beats === 1 ? "" : "s"} · ${scene.section}`,
        ),
        issues.length ? el("ul", { class: "issues", "aria-label": `Issues with scene ${scene.index + 1}` }, ...issues) : null,
      );
    }),
  );
}

// ---------------------------------------------------------------- the prompt builder

function builderFields() {
  return $("builder").elements;
}

function renderBuilder() {
  const run = state.run;
  const stopped = ENDED.includes(run.status) || run.status === "waiting";
  $("apply").disabled = !stopped || !run.intent;
  $("builder-hint").textContent = !run.intent
    ? "The settings fill in once your request is read."
    : stopped
      ? "Change any setting and make a new version: what did not change is reused."
      : "You can change the settings when this version stops.";
  if (!run.intent || state.builderDirty) return;
  const fields = builderFields();
  fields.category.value = run.intent.category;
  fields.duration.value = Math.round(run.intent.duration);
  fields.style.value = run.intent.style.join(", ");
  fields.mood.value = run.intent.mood;
  fields.pace.value = run.intent.pace;
  for (const box of fields.formats) box.checked = run.intent.formats.includes(box.value);
}

/** The settings set in the panel (blank ones are left out), or null when one is impossible. */
function builderChoices() {
  const fields = builderFields();
  const chosen = {};
  for (const name of ["category", "mood", "pace"]) {
    if (fields[name].value) chosen[name] = fields[name].value;
  }
  if (fields.duration.value) {
    const duration = Number(fields.duration.value);
    if (!Number.isFinite(duration) || duration < 3 || duration > 600) {
      $("builder-error").textContent = "The duration is between 3 and 600 seconds.";
      return null;
    }
    chosen.duration = duration;
  }
  const style = fields.style.value.split(",").map((w) => w.trim()).filter(Boolean);
  if (style.length) chosen.style = style;
  const formats = [...fields.formats].filter((b) => b.checked).map((b) => b.value);
  if (formats.length) chosen.formats = formats;
  $("builder-error").textContent = "";
  return chosen;
}

async function applyBuilder(event) {
  event.preventDefault();
  const intent = state.run?.intent;
  if (!intent) return;
  const chosen = builderChoices();
  if (!chosen) return;
  const changes = {};
  for (const name of ["category", "mood", "pace"]) {
    if (chosen[name] && chosen[name] !== intent[name]) changes[name] = chosen[name];
  }
  if (chosen.duration && Math.round(chosen.duration) !== Math.round(intent.duration)) changes.duration = chosen.duration;
  if (chosen.style && chosen.style.join(",") !== intent.style.join(",")) changes.style = chosen.style;
  if (chosen.formats && [...chosen.formats].sort().join() !== [...intent.formats].sort().join()) {
    changes.formats = chosen.formats;
  }
  if (!Object.keys(changes).length) {
    $("builder-error").textContent = "Nothing changed yet.";
    return;
  }
  $("builder-error").textContent = "";
  $("apply").disabled = true;
  try {
    const revised = await request("POST", `/api/runs/${state.run.id}/revise`, changes);
    await openRun(revised.id);
  } catch (error) {
    $("builder-error").textContent = error.message;
    $("apply").disabled = false;
  }
}

// ---------------------------------------------------------------- feedback

function renderFeedback() {
  const run = state.run;
  const panel = $("feedback");
  const question = run.status === "waiting" ? run.question : null;
  if (!question) {
    panel.hidden = true;
    return;
  }
  const storyboard = question.kind === "storyboard";
  const asked = `${run.id}:${question.kind || "critic"}:${question.round}:${question.revision || 0}`;
  if (!panel.hidden && panel.dataset.asked === asked) return;
  panel.hidden = false;
  panel.dataset.asked = asked;
  $("feedback-title").textContent = storyboard ? "Approve the storyboard" : "The critic has a question";
  $("label-accept").textContent = storyboard ? "Approve: make the pictures" : "Accept the suggested fixes";
  $("label-regenerate").textContent = storyboard ? "Rewrite chosen scenes' prompts" : "Make chosen scenes again";
  $("choice-skip").hidden = storyboard;
  $("choice-budget").hidden = !storyboard;
  $("feedback-text").textContent = question.text;
  $("feedback-issues").replaceChildren(
    ...(storyboard
      ? question.scenes.map((scene) =>
          el(
            "li",
            { class: "storyboard-scene" },
            scene.sketch ? el("img", { src: assetUrl(scene.sketch.url), alt: `Sketch of scene ${scene.scene + 1}`, width: 96 }) : null,
            ` Scene ${scene.scene + 1} (${scene.start.toFixed(1)}–${scene.end.toFixed(1)} s): ${scene.upload ? "your picture" : scene.prompt || ""}`,
          ),
        )
      : question.issues.map((issue) =>
          el("li", { class: `issue ${issue.severity}` }, `Scene ${issue.scene + 1}: ${issue.message}`),
        )),
  );
  const flagged = new Set(question.issues.map((i) => i.scene));
  for (const input of $("feedback-form").elements.action) input.checked = input.value === "accept";
  $("regenerate-scenes").replaceChildren(
    ...(run.plan?.scenes || []).filter((scene) => !storyboard || scene.source !== "upload").map((scene) =>
      el(
        "label",
        {},
        el("input", { type: "checkbox", name: "scene", value: scene.index, checked: flagged.has(scene.index) }),
        ` Scene ${scene.index + 1}`,
      ),
    ),
  );
  $("feedback-error").textContent = "";
  showAnswerFields();
}

function showAnswerFields() {
  const action = $("feedback-form").elements.action.value;
  $("answer-regenerate").hidden = action !== "regenerate";
  $("answer-edit").hidden = action !== "edit";
  $("answer-budget").hidden = action !== "budget";
}

async function answer(event) {
  event.preventDefault();
  const form = $("feedback-form").elements;
  const action = form.action.value;
  const answer = { action };
  if (action === "regenerate") {
    answer.scenes = [...form.scene].filter((b) => b.checked).map((b) => Number(b.value));
    answer.instruction = form.instruction.value.trim();
    if (!answer.scenes.length) {
      $("feedback-error").textContent = "Choose the scenes to make again.";
      return;
    }
  }
  if (action === "budget") {
    const usd = Number(form["budget-usd"].value);
    if (form["budget-usd"].value === "" || !(usd >= 0)) {
      $("feedback-error").textContent = "Give the most this video may spend, in US dollars.";
      return;
    }
    answer.usd = usd;
  }
  if (action === "edit") {
    if (form["edit-pace"].value) answer.pace = form["edit-pace"].value;
    if (form["edit-mood"].value) answer.mood = form["edit-mood"].value;
    if (form["edit-duration"].value) answer.duration = Number(form["edit-duration"].value);
  }
  try {
    await request("POST", `/api/runs/${state.run.id}/feedback`, answer);
    $("feedback").hidden = true;
    setNode("feedback", "done");
    renderNodes();
    scheduleRefresh();
  } catch (error) {
    $("feedback-error").textContent = error.message;
  }
}

// ---------------------------------------------------------------- result and versions

function setPlayer(url, caption) {
  const player = $("player");
  const src = assetUrl(url);
  if (player.getAttribute("src") !== src) player.setAttribute("src", src);
  $("player-caption").textContent = caption;
}

function renderResult() {
  const run = state.run;
  // Events can come before the run has been read: it is drawn once it is.
  if (!run) return;
  const outputs = run.outputs;
  if (!outputs && !state.preview) {
    $("result").hidden = true;
    return;
  }
  $("result").hidden = false;
  if (!outputs) {
    $("result-title").textContent = "Preview";
    $("formats").replaceChildren();
    setPlayer(state.preview.url, "The 480p preview; the final video is being rendered.");
    $("downloads").replaceChildren(el("li", {}, el("a", { href: assetUrl(state.preview.url), download: "preview.mp4" }, "Preview (480p)")));
    renderCost();
    return;
  }
  $("result-title").textContent = `Result · version ${run.version}`;
  const videos = outputs.videos;
  if (!videos.some((v) => v.format === state.format)) state.format = videos[0].format;
  $("formats").replaceChildren(
    ...videos.map((video) =>
      el(
        "button",
        {
          type: "button",
          class: "tab",
          "aria-pressed": String(video.format === state.format),
          onclick: () => {
            state.format = video.format;
            renderResult();
          },
        },
        video.format,
      ),
    ),
  );
  const shown = videos.find((v) => v.format === state.format);
  setPlayer(shown.asset.url, `${shown.format}, ${bytes(shown.asset.size)}`);
  const link = (asset, label, name) =>
    el("li", {}, el("a", { href: assetUrl(asset.url), download: name }, label), ` ${bytes(asset.size)}`);
  $("downloads").replaceChildren(
    ...videos.map((v) => link(v.asset, `Video ${v.format} (MP4)`, `montage-v${run.version}-${v.format.replace(":", "x")}.mp4`)),
    link(outputs.preview, "Preview (480p)", `montage-v${run.version}-preview.mp4`),
    link(outputs.srt, "Captions (SRT)", `montage-v${run.version}.srt`),
    link(outputs.vtt, "Captions (WebVTT)", `montage-v${run.version}.vtt`),
    link(outputs.contact_sheet, "Contact sheet", `montage-v${run.version}-scenes.png`),
  );
  renderCost();
}

function renderCost() {
  const cost = state.run.cost;
  $("cost").textContent = `$${cost.usd.toFixed(2)} · ${cost.calls} model calls, ${cost.cached} from the cache`;
  $("ledger").replaceChildren(
    ...cost.ledger.map((entry) =>
      el(
        "tr",
        {},
        el("td", {}, entry.node),
        el("td", {}, entry.scene == null ? "" : String(entry.scene + 1)),
        el("td", {}, entry.model),
        el("td", {}, `$${entry.usd.toFixed(3)}`),
        el("td", {}, entry.cached ? "yes" : "no"),
      ),
    ),
  );
}

async function renderVersions() {
  const versions = state.run.versions;
  const panel = $("versions-panel");
  if (versions.length < 2) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  for (const version of versions) {
    if (version.status === "completed" && !state.versionViews.has(version.id)) {
      state.versionViews.set(version.id, await request("GET", `/api/runs/${version.id}`).catch(() => null));
    }
  }
  $("versions").replaceChildren(
    ...versions.map((version) => {
      const view = state.versionViews.get(version.id);
      const video = view?.outputs?.videos[0];
      const current = version.id === state.runId;
      return el(
        "li",
        { class: `version ${current ? "current" : ""}`, "data-version": version.version },
        video
          ? el("video", { src: assetUrl(video.asset.url), controls: true, preload: "metadata", "aria-label": `Version ${version.version}, ${video.format}` })
          : el("div", { class: "placeholder" }, STATUS_WORDS[version.status] || version.status),
        el(
          "p",
          {},
          el("strong", {}, `Version ${version.version}`),
          ` · ${STATUS_WORDS[version.status] || version.status}`,
          view?.prompt ? el("span", { class: "hint" }, ` — ${view.prompt}`) : null,
        ),
        current
          ? el("span", { class: "hint" }, "Shown above")
          : el("button", { type: "button", class: "secondary", onclick: () => openRun(version.id) }, `Open version ${version.version}`),
      );
    }),
  );
}

// ---------------------------------------------------------------- the socket's messages

function onEnvelope(envelope) {
  const forThisChat = envelope.chat_id && envelope.chat_id === state.chat?.id;
  switch (envelope.type) {
    case "chat.delta":
      if (forThisChat) onDelta(envelope.data.text);
      return;
    case "chat.message":
      if (forThisChat) addMessage(envelope.data);
      return;
    case "chat.run":
      if (forThisChat) openRun(envelope.data.run_id);
      return;
    case "subscribed":
      // After a reconnect the run may have moved on without us: read it again.
      if (envelope.run_id === state.runId) scheduleRefresh();
      return;
    case "error":
      if (envelope.data.code === "not_found" && envelope.run_id === state.runId) closeRun();
      return;
    default:
      if (envelope.run_id && envelope.run_id === state.runId && envelope.seq != null) onRunEvent(envelope);
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  for (const select of document.querySelectorAll("select[data-choices]")) {
    select.append(...CHOICES[select.dataset.choices].map(([value, label]) => el("option", { value }, label)));
  }
  $("composer").addEventListener("submit", send);
  $("composer-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("file-input").addEventListener("change", (e) => {
    attach(e.target.files);
    e.target.value = "";
  });
  setUpDrop();
  $("new-chat").addEventListener("click", newChat);
  $("chat-list").addEventListener("change", (e) => {
    if (e.target.value) openChat(e.target.value).catch((error) => ($("upload-error").textContent = error.message));
    else newChat();
  });
  $("builder").addEventListener("input", () => {
    state.builderDirty = true;
  });
  $("builder").addEventListener("submit", applyBuilder);
  $("feedback-form").addEventListener("change", showAnswerFields);
  $("feedback-form").addEventListener("submit", answer);
  $("cancel").addEventListener("click", async () => {
    try {
      await request("POST", `/api/runs/${state.runId}/cancel`);
      scheduleRefresh();
    } catch (error) {
      $("run-status").textContent = error.message;
    }
  });
  $("sign-in-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("token").value.trim());
    start();
  });
  window.addEventListener("resize", () => state.run && renderTimeline());
}

wire();
start().catch((error) => {
  $("connection").textContent = error instanceof ApiError ? error.message : "Something went wrong.";
});
