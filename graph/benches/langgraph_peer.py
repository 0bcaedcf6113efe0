"""LangGraph on the same pipeline-shaped graph as step_overhead.rs, for the ratio.

8 nodes, intent -> analyze -> plan -> prompts -> assets -> critic -> feedback -> compose,
feedback routing back to plan three times (23 steps a run), trivial node bodies.
Prints microseconds per step with no checkpointer and with InMemorySaver; with --databases,
also with SqliteSaver (a file) and, when MONTAGE_BENCH_POSTGRES_URL names a server, PostgresSaver
(in a database of its own).
"""

import os
import sqlite3
import sys
import tempfile
import time
import uuid
from typing import TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

NODES = ["intent", "analyze", "plan", "prompts", "assets", "critic", "feedback", "compose"]
STEPS_PER_RUN = 23


class Pipeline(TypedDict):
    last_node: str
    steps: int
    iterations: int


def make_node(name):
    def node(state: Pipeline) -> dict:
        update = {"last_node": name, "steps": state["steps"] + 1}
        if name == "feedback":
            update["iterations"] = state["iterations"] + 1
        return update

    return node


def build(checkpointer):
    g = StateGraph(Pipeline)
    for name in NODES:
        g.add_node(name, make_node(name))
    g.add_edge(START, "intent")
    for a, b in zip(NODES[:7], NODES[1:7]):
        g.add_edge(a, b)
    g.add_conditional_edges(
        "feedback", lambda s: "plan" if s["iterations"] <= 3 else "compose", ["plan", "compose"]
    )
    g.add_edge("compose", END)
    return g.compile(checkpointer=checkpointer)


def per_step_us(graph, runs, with_thread):
    def once():
        config = {"configurable": {"thread_id": str(uuid.uuid4())}} if with_thread else None
        out = graph.invoke({"last_node": "", "steps": 0, "iterations": 0}, config)
        assert out["steps"] == STEPS_PER_RUN, out

    for _ in range(20):
        once()
    start = time.perf_counter()
    for _ in range(runs):
        once()
    return (time.perf_counter() - start) / (runs * STEPS_PER_RUN) * 1e6


def databases():
    from langgraph.checkpoint.sqlite import SqliteSaver

    with tempfile.TemporaryDirectory() as folder:
        connection = sqlite3.connect(os.path.join(folder, "lg.db"), check_same_thread=False)
        sqlite = per_step_us(build(SqliteSaver(connection)), 40, True)
    print(f"  sqlite checkpointer:   {sqlite:8.1f} µs")
    url = os.environ.get("MONTAGE_BENCH_POSTGRES_URL")
    if url:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver

        name = f"langgraph_bench_{os.getpid()}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
        base = url.rsplit("/", 1)[0]
        with psycopg.connect(f"{base}/{name}", autocommit=True, prepare_threshold=0) as conn:
            saver = PostgresSaver(conn)
            saver.setup()
            postgres = per_step_us(build(saver), 40, True)
        print(f"  postgres checkpointer: {postgres:8.1f} µs")


if __name__ == "__main__":
    if "--databases" in sys.argv:
        print(f"langgraph per step, pipeline graph ({STEPS_PER_RUN} steps a run):")
        databases()
        sys.exit(0)
    bare = per_step_us(build(None), 300, False)
    memory = per_step_us(build(InMemorySaver()), 300, True)
    print(f"langgraph per step, pipeline graph ({STEPS_PER_RUN} steps a run):")
    print(f"  no checkpointer:     {bare:8.2f} µs")
    print(f"  memory checkpointer: {memory:8.2f} µs")
