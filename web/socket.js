// The WebSocket (protocol v1, docs/protocol.md): reconnects by itself and, once back,
// subscribes again from the last seq it saw, so no event is lost or seen twice.

import { socketUrl } from "./api.js";

const BACKOFF_MS = [250, 500, 1000, 2000, 4000];

/** One connection that outlives network drops and server restarts. */
export class Live {
  /**
   * `onEnvelope(envelope)` gets every run event once, in seq order, and every other message;
   * `onState(state)` hears "connecting", "open" or "reconnecting".
   */
  constructor(onEnvelope, onState) {
    this.onEnvelope = onEnvelope;
    this.onState = onState;
    this.runs = new Map(); // run id → last seq seen
    this.chats = new Map(); // chat id → last message seq seen
    this.attempt = 0;
    this.queue = [];
    this.connect();
  }

  connect() {
    this.onState(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(socketUrl());
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState("open");
      for (const [chat, seq] of this.chats) this.raw({ type: "subscribe", chat_id: chat, seq });
      for (const [run, seq] of this.runs) this.raw({ type: "subscribe", run_id: run, seq });
      for (const message of this.queue.splice(0)) this.raw(message);
    };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = () => {
      const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      this.attempt += 1;
      this.onState("reconnecting");
      setTimeout(() => this.connect(), delay);
    };
  }

  receive(text) {
    let envelope;
    try {
      envelope = JSON.parse(text);
    } catch {
      return;
    }
    const run = envelope.run_id;
    if (envelope.seq != null && run) {
      // Only followed runs; replays after a reconnect can overlap what was already seen.
      if (!this.runs.has(run) || envelope.seq <= this.runs.get(run)) return;
      this.runs.set(run, envelope.seq);
    }
    if (envelope.type === "chat.message" && envelope.chat_id && this.chats.has(envelope.chat_id)) {
      const seq = envelope.data.seq;
      if (seq <= this.chats.get(envelope.chat_id)) return;
      this.chats.set(envelope.chat_id, seq);
    }
    this.onEnvelope(envelope);
  }

  raw(message) {
    this.ws.send(JSON.stringify({ v: 1, ...message }));
  }

  /** Sends `message` now, or as soon as the connection is back. */
  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.raw(message);
    else this.queue.push(message);
  }

  /** Follows run `id`'s events after `seq`. */
  watchRun(id, seq = 0) {
    if (this.runs.has(id)) return;
    this.runs.set(id, seq);
    this.send({ type: "subscribe", run_id: id, seq });
  }

  /** Stops following run `id`. */
  forgetRun(id) {
    if (!this.runs.delete(id)) return;
    this.send({ type: "unsubscribe", run_id: id });
  }

  /** Follows chat `id`'s messages after message `seq`. */
  watchChat(id, seq = 0) {
    this.chats.set(id, seq);
    this.send({ type: "subscribe", chat_id: id, seq });
  }

  /** Stops following every chat (runs are forgotten one by one). */
  forgetChats() {
    this.chats.clear();
  }
}
