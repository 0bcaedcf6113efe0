//! Per-step overhead of the engine on the pipeline-shaped graph: 8 nodes, intent → analyze
//! → plan → prompts → assets → critic → feedback → compose, with feedback routing back to
//! plan three times (23 steps a run) and trivial node bodies.
//!
//! `cargo bench -p montage-graph --bench step_overhead` prints criterion's figures, then a
//! summary: time per step without a checkpointer and with the in-memory one, and bytes
//! written per checkpoint. `scripts/bench-graph` runs it beside LangGraph on the same graph.

#![allow(clippy::print_stdout, reason = "a bench prints its figures")]
#![allow(missing_docs, reason = "criterion_group! generates an undocumented fn")]

use criterion::{Criterion, Throughput, criterion_group};
use montage_graph::testing::{PIPELINE_STEPS, PipelineState, pipeline_graph};
use montage_graph::{Checkpointer, CompiledGraph, MemoryCheckpointer, RunConfig, ThreadId};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STEPS_PER_RUN: u64 = PIPELINE_STEPS;

async fn run_once(graph: &CompiledGraph<PipelineState>) {
    let thread = ThreadId::random();
    let out = graph
        .invoke(&thread, PipelineState::default(), RunConfig::default())
        .await
        .expect("bench run");
    assert_eq!(u64::from(out.state().steps), STEPS_PER_RUN);
    graph.event_hub().forget(&thread);
}

fn with_memory() -> CompiledGraph<PipelineState> {
    pipeline_graph().with_checkpointer(Arc::new(MemoryCheckpointer::new()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn bench_steps(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("pipeline_run");
    group.throughput(Throughput::Elements(STEPS_PER_RUN));
    group.bench_function("no_checkpointer", |b| {
        let graph = pipeline_graph().without_checkpointer();
        b.to_async(&rt).iter(|| run_once(&graph));
    });
    group.bench_function("memory_checkpointer", |b| {
        // A fresh store per sample keeps memory flat however many iterations criterion picks.
        b.to_async(&rt).iter_custom(|iters| async move {
            let graph = with_memory();
            let start = Instant::now();
            for _ in 0..iters {
                run_once(&graph).await;
            }
            start.elapsed()
        });
    });
    group.finish();
}

fn per_step(graph: impl Fn() -> CompiledGraph<PipelineState>, runs: u32) -> Duration {
    let rt = runtime();
    let graph = graph();
    rt.block_on(async {
        for _ in 0..100 {
            run_once(&graph).await;
        }
        let start = Instant::now();
        for _ in 0..runs {
            run_once(&graph).await;
        }
        start.elapsed() / (runs * STEPS_PER_RUN as u32)
    })
}

fn summary() {
    let rt = runtime();
    let store = Arc::new(MemoryCheckpointer::new());
    let graph = pipeline_graph().with_checkpointer(store.clone());
    let thread = ThreadId::random();
    let (data, meta, count) = rt.block_on(async {
        graph
            .invoke(&thread, PipelineState::default(), RunConfig::default())
            .await
            .expect("run");
        let history = store.history(&thread).await.expect("history");
        let data: usize = history.iter().map(|c| c.stored_bytes()).sum();
        let meta: usize = history
            .iter()
            .map(|c| serde_json::to_vec(&c.meta).expect("meta").len())
            .sum();
        (data, meta, history.len())
    });
    let bare = per_step(|| pipeline_graph().without_checkpointer(), 2000);
    let memory = per_step(with_memory, 2000);
    println!("montage-graph per step, pipeline graph ({STEPS_PER_RUN} steps a run):");
    println!(
        "  no checkpointer:     {:>8.2} µs",
        bare.as_secs_f64() * 1e6
    );
    println!(
        "  memory checkpointer: {:>8.2} µs",
        memory.as_secs_f64() * 1e6
    );
    println!(
        "  bytes per checkpoint: {:.0} state data + {:.0} metadata (JSON), {count} checkpoints a run",
        data as f64 / count as f64,
        meta as f64 / count as f64
    );
}

criterion_group!(benches, bench_steps);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
