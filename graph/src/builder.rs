//! The `StateGraph` builder: nodes, edges and routers, validated by `compile()`.

use crate::Command;
use crate::compiled::CompiledGraph;
use crate::error::{BuildError, NodeError};
use crate::node::{ItemFn, ItemsFn, NodeContext, NodeFn, RetryPolicy, RouterFn};
use crate::state::{Counters, State};
use crate::topology::{END, NodeBody, NodeSpec, Router, START};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;

/// Builds a graph over state `S`. Nothing runs until it is compiled and invoked.
pub struct StateGraph<S: State> {
    nodes: Vec<NodeSpec<S>>,
    edges: Vec<(String, String)>,
    routers: Vec<(String, Router<S>)>,
}

impl<S: State> Default for StateGraph<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: State> StateGraph<S> {
    /// An empty graph.
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            edges: Vec::new(),
            routers: Vec::new(),
        }
    }

    fn push(&mut self, name: &str, body: NodeBody<S>) -> &mut NodeSpec<S> {
        self.nodes.push(NodeSpec {
            name: name.to_owned(),
            body,
            retry: RetryPolicy::default(),
            timeout: None,
            on_answer: None,
            goto_targets: Vec::new(),
        });
        self.nodes.last_mut().expect("a node was just pushed")
    }

    /// Adds a node: an async function of a state snapshot and a context.
    pub fn add_node<F, Fut>(&mut self, name: &str, node: F) -> &mut NodeSpec<S>
    where
        F: Fn(Arc<S>, NodeContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Command<S::Update>, NodeError>> + Send + 'static,
    {
        let node: NodeFn<S> = Arc::new(move |state, ctx| Box::pin(node(state, ctx)));
        self.push(name, NodeBody::Single(node))
    }

    /// Adds a fan-out node: `items` lists the work from the state, `node` runs once per item
    /// (at most [`NodeSpec::concurrency`] at once, default 4), and the updates are merged in
    /// the items' order. A fan-out item cannot interrupt or jump.
    pub fn add_fan_out<I, L, F, Fut>(&mut self, name: &str, items: L, node: F) -> &mut NodeSpec<S>
    where
        I: Clone + Send + Sync + 'static,
        L: Fn(&S) -> Vec<I> + Send + Sync + 'static,
        F: Fn(Arc<S>, I, NodeContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S::Update, NodeError>> + Send + 'static,
    {
        let node = Arc::new(node);
        let items: ItemsFn<S> = Arc::new(move |state: &Arc<S>| {
            items(state)
                .into_iter()
                .map(|item| {
                    let node = Arc::clone(&node);
                    let state = Arc::clone(state);
                    let task: ItemFn<S> =
                        Arc::new(move |ctx| Box::pin(node(Arc::clone(&state), item.clone(), ctx)));
                    task
                })
                .collect()
        });
        self.push(
            name,
            NodeBody::FanOut {
                items,
                concurrency: 4,
            },
        )
    }

    /// Adds an edge: after `from` finishes, `to` runs. Several edges from one node run their
    /// targets in parallel in the next step.
    pub fn add_edge(&mut self, from: &str, to: &str) -> &mut Self {
        self.edges.push((from.to_owned(), to.to_owned()));
        self
    }

    /// After `from`, `router` reads the state and counters and names the next node (or END),
    /// which must be one of `targets`.
    pub fn add_conditional_edges<'a, R, T>(
        &mut self,
        from: &str,
        router: R,
        targets: impl IntoIterator<Item = &'a str>,
    ) -> &mut Self
    where
        R: Fn(&S, &Counters) -> T + Send + Sync + 'static,
        T: Into<String>,
    {
        let route: RouterFn<S> = Arc::new(move |state, counters| router(state, counters).into());
        self.routers.push((
            from.to_owned(),
            Router {
                route,
                targets: targets.into_iter().map(str::to_owned).collect(),
            },
        ));
        self
    }

    /// Validates the graph and compiles it, with an in-memory checkpointer (replace it with
    /// [`CompiledGraph::with_checkpointer`]).
    pub fn compile(self) -> Result<CompiledGraph<S>, BuildError> {
        let mut names = HashSet::new();
        for node in &self.nodes {
            if node.name.is_empty() || node.name == START || node.name == END {
                return Err(BuildError::InvalidName(node.name.clone()));
            }
            if !names.insert(node.name.clone()) {
                return Err(BuildError::DuplicateNode(node.name.clone()));
            }
            if let NodeBody::FanOut { concurrency: 0, .. } = node.body {
                return Err(BuildError::ZeroConcurrency(node.name.clone()));
            }
        }
        let known = |name: &str| names.contains(name) || name == END;
        let mut successors: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (from, to) in &self.edges {
            if to == START || from == END {
                return Err(BuildError::InvalidEdge {
                    from: from.clone(),
                    to: to.clone(),
                });
            }
            for name in [from, to] {
                if name != START && !known(name) {
                    return Err(BuildError::UnknownNode {
                        name: name.clone(),
                        context: format!("edge {from} -> {to}"),
                    });
                }
            }
            successors
                .entry(from.clone())
                .or_default()
                .insert(to.clone());
        }
        for (from, router) in &self.routers {
            if from != START && !names.contains(from) {
                return Err(BuildError::UnknownNode {
                    name: from.clone(),
                    context: "conditional edges".into(),
                });
            }
            for target in &router.targets {
                if !known(target) {
                    return Err(BuildError::UnknownNode {
                        name: target.clone(),
                        context: format!("router of `{from}`"),
                    });
                }
                successors
                    .entry(from.clone())
                    .or_default()
                    .insert(target.clone());
            }
        }
        for node in &self.nodes {
            for target in &node.goto_targets {
                if !known(target) {
                    return Err(BuildError::UnknownNode {
                        name: target.clone(),
                        context: format!("goto targets of `{}`", node.name),
                    });
                }
                successors
                    .entry(node.name.clone())
                    .or_default()
                    .insert(target.clone());
            }
        }
        if successors.get(START).is_none_or(BTreeSet::is_empty) {
            return Err(BuildError::NoEntry);
        }
        for node in &self.nodes {
            if successors.get(&node.name).is_none_or(BTreeSet::is_empty) {
                return Err(BuildError::MissingRoute(node.name.clone()));
            }
        }
        let mut reached = HashSet::from([START.to_owned()]);
        let mut queue = VecDeque::from([START.to_owned()]);
        while let Some(name) = queue.pop_front() {
            for next in successors.get(&name).into_iter().flatten() {
                if reached.insert(next.clone()) {
                    queue.push_back(next.clone());
                }
            }
        }
        if let Some(node) = self.nodes.iter().find(|n| !reached.contains(&n.name)) {
            return Err(BuildError::Unreachable(node.name.clone()));
        }

        let mut edges: HashMap<String, Vec<String>> = HashMap::new();
        for (from, to) in self.edges {
            let targets = edges.entry(from).or_default();
            if !targets.contains(&to) {
                targets.push(to);
            }
        }
        let mut routers: HashMap<String, Vec<Router<S>>> = HashMap::new();
        for (from, router) in self.routers {
            routers.entry(from).or_default().push(router);
        }
        let nodes = self
            .nodes
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        Ok(CompiledGraph::new(crate::compiled::Topology {
            nodes,
            edges,
            routers,
        }))
    }
}
