"""LangGraph on the same pipeline-shaped graph as step_overhead.rs, for the ratio.

8 nodes, intent -> analyze -> plan -> prompts -> assets -> critic -> feedback -> compose,
feedback routing back to plan three times (23 steps a run), trivial node bodies.
Prints microseconds per step with no checkpointer and with InMemorySaver.
"""

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


if __name__ == "__main__":
    bare = per_step_us(build(None), 300, False)
    memory = per_step_us(build(InMemorySaver()), 300, True)
    print(f"langgraph per step, pipeline graph ({STEPS_PER_RUN} steps a run):")
    print(f"  no checkpointer:     {bare:8.2f} µs")
    print(f"  memory checkpointer: {memory:8.2f} µs")
