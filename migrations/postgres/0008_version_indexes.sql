-- The versions of a video are found through their first run (`root`), and the chats making a
-- video through the run they follow: both are read on every view of a run or revision.
CREATE INDEX runs_by_root ON runs (root);
CREATE INDEX chats_by_run ON chats (run);
