-- Conversations: each belongs to a user and follows one run at a time (the latest version
-- of the video it is making).
CREATE TABLE chats (
    id            TEXT    PRIMARY KEY,
    owner         TEXT    NOT NULL REFERENCES users (id),
    title         TEXT    NOT NULL,
    run           TEXT    REFERENCES runs (id),
    created_at_ms INTEGER  NOT NULL
);
CREATE INDEX chats_by_owner ON chats (owner, created_at_ms);

-- Their messages, in order: what people said (with the uploads they attached) and what the
-- agent answered (with the tool calls it made and their results).
CREATE TABLE chat_messages (
    chat          TEXT    NOT NULL REFERENCES chats (id),
    seq           INTEGER  NOT NULL,
    role          TEXT    NOT NULL,
    content       TEXT    NOT NULL,
    actions       TEXT    NOT NULL,
    uploads       TEXT    NOT NULL,
    created_at_ms INTEGER  NOT NULL,
    PRIMARY KEY (chat, seq)
);
