//! Which row a count lands on: a pod is the endpoint a gateway dialled
//! joined to the name its replies carry (pods on one host share an IP,
//! never an address); the sticky target is the Service, not a pod; pods
//! `r` forgot stay forgotten while gateways keep reporting them.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::{MAX_TRACKED_PODS, PodKind, PodStats, Stats};
use crate::state::messages::PodInfo;

impl Stats {
    /// The key of the pod a request or total belongs to: its name (a pod
    /// known until now only by its address takes it), else the pod dialled
    /// at `endpoint`, else the one pod with that IP; `None` when nothing
    /// names a pod, or a new one would pass [`MAX_TRACKED_PODS`].
    pub(super) fn attribute(&mut self, name: &str, endpoint: &str, ip: &str) -> Option<String> {
        // The Service's address says nothing about which pod answered.
        let dialled = (!endpoint.is_empty() && !self.sticky_targets.contains(endpoint)).then_some(endpoint);
        if !name.is_empty() {
            if let Some(pod) = self.pods.get(name) {
                // Named, and now dialled at an address a row of its own
                // stands for (listed before any reply named it): one pod.
                if let Some(dialled) = dialled.filter(|d| pod.endpoint != *d)
                    && let Some(unnamed) = self.unnamed_at(Some(dialled), "")
                {
                    self.merge(&unnamed, name);
                }
                return Some(name.to_owned());
            }
            if self.forgotten.contains_key(name) {
                return Some(name.to_owned());
            }
            if let Some(unnamed) = self.unnamed_at(dialled, ip) {
                self.rename(&unnamed, name);
                return Some(name.to_owned());
            }
            return (self.pods.len() < MAX_TRACKED_PODS).then(|| name.to_owned());
        }
        if let Some(pod) = self
            .pods
            .values()
            .find(|p| !endpoint.is_empty() && p.endpoint == endpoint)
        {
            return Some(pod.name.clone());
        }
        if ip.is_empty() {
            return None;
        }
        // By IP only when one pod has it, and no other address is known for it.
        let mut at_ip = self.pods.values().filter(|p| p.ip == ip);
        match (at_ip.next(), at_ip.next()) {
            (Some(pod), None) if dialled.is_none() || pod.endpoint.is_empty() => Some(pod.name.clone()),
            _ => None,
        }
    }

    /// The pod listed only by its address (no name yet) at `endpoint`, or,
    /// with no endpoint to go by, the only such pod with `ip`.
    fn unnamed_at(&self, endpoint: Option<&str>, ip: &str) -> Option<String> {
        let unnamed = || self.pods.values().filter(|p| p.kind == PodKind::Pod && p.unnamed());
        match endpoint {
            Some(endpoint) => unnamed().find(|p| p.endpoint == endpoint).map(|p| p.name.clone()),
            None if ip.is_empty() => None,
            None => only(unnamed().filter(|p| p.ip == ip)),
        }
    }

    /// A pod known by its address gets the name its replies carry: re-keyed,
    /// not shown twice.
    fn rename(&mut self, from: &str, to: &str) {
        if let Some(mut pod) = self.pods.remove(from) {
            to.clone_into(&mut pod.name);
            self.pods.insert(to.to_owned(), pod);
        }
    }

    /// The row `from` is the pod `into`: one row, counts and all.
    fn merge(&mut self, from: &str, into: &str) {
        let Some(from) = self.pods.remove(from) else { return };
        if let Some(pod) = self.pods.get_mut(into) {
            pod.absorb(from);
        }
    }

    /// Where sticky mode sends requests (each gateway's Service address):
    /// a row for one of them is the Service, not a pod.
    pub(in crate::state) fn set_sticky_targets(&mut self, targets: BTreeSet<String>) {
        for pod in self.pods.values_mut() {
            pod.kind = kind_of(&targets, &pod.name, &pod.endpoint);
        }
        self.sticky_targets = targets;
    }

    /// Marks the pods the gateways skip, those whose health checks fail,
    /// and those served while terminating, and only them: `skipped` and
    /// `down` map an endpoint's address, and its pod name when it has one,
    /// to the reason; `terminating` holds such keys.
    pub(in crate::state) fn mark_skipped(
        &mut self,
        skipped: &BTreeMap<String, String>,
        down: &BTreeMap<String, String>,
        families: &BTreeMap<String, String>,
        terminating: &BTreeSet<String>,
    ) {
        for pod in self.pods.values_mut() {
            let of = |marks: &BTreeMap<String, String>| {
                let by_endpoint = (!pod.endpoint.is_empty()).then(|| marks.get(&pod.endpoint)).flatten();
                by_endpoint.or_else(|| marks.get(&pod.name)).cloned()
            };
            pod.skipped = of(skipped);
            pod.down = of(down);
            pod.metrics_family = of(families);
            pod.serving_terminating =
                (!pod.endpoint.is_empty() && terminating.contains(&pod.endpoint)) || terminating.contains(&pod.name);
        }
    }

    /// The pod under `key` (from [`Self::attribute`]), added if new; it
    /// learns its IP and the address dialled for it when it had none.
    pub(super) fn pod_mut(&mut self, key: &str, endpoint: &str, ip: &str) -> &mut PodStats {
        let window = self.window;
        let dialled = !endpoint.is_empty() && !self.sticky_targets.contains(endpoint);
        let kind = kind_of(&self.sticky_targets, key, endpoint);
        let pod = self.pods.entry(key.to_owned()).or_insert_with(|| {
            let mut pod = PodStats::new(key.to_owned(), ip.to_owned()).windowed(window);
            pod.kind = kind;
            pod
        });
        if pod.ip.is_empty() && !ip.is_empty() {
            ip.clone_into(&mut pod.ip);
        }
        if pod.endpoint.is_empty() && dialled {
            endpoint.clone_into(&mut pod.endpoint);
        }
        pod
    }

    /// Pods in `pods` are listed (added if new); listed pods missing from it
    /// are gone. `keep_info`: the list comes from a pod source whose details
    /// (phase, node, ...) are shown.
    pub(in crate::state) fn list_pods(&mut self, pods: Vec<PodInfo>, keep_info: bool) {
        if self.pods.len() >= MAX_TRACKED_PODS {
            // Full: the history of pods gone or never listed (named only by
            // events, which a flood is made of) makes room for listed ones.
            self.pods.retain(|_, pod| pod.ready.is_some() && !pod.gone);
        }
        let mut listed = HashSet::with_capacity(pods.len());
        for info in pods {
            // Listed again: back, counting from the reset.
            self.unforget(&info.name);
            let ip = info.ip.clone();
            // A gateway that knows no name lists the endpoint by its address
            // (or, older ones, by IP): a pod that has since answered under
            // its name is that listing.
            let named_by_address = info.name == info.endpoint || info.name == ip;
            let known = named_by_address
                .then(|| {
                    let at_endpoint = self
                        .pods
                        .values()
                        .find(|p| !info.endpoint.is_empty() && p.endpoint == info.endpoint);
                    match at_endpoint {
                        Some(pod) => Some(pod.name.clone()),
                        None if info.endpoint.is_empty() => only(self.pods.values().filter(|p| p.ip == ip)),
                        None => None,
                    }
                })
                .flatten();
            let name = match known {
                Some(name) => name,
                None => match self.attribute(&info.name, &info.endpoint, &ip) {
                    Some(name) => name,
                    // Nameless: known by its address.
                    None if info.name.is_empty() && !info.endpoint.is_empty() => info.endpoint.clone(),
                    None if info.name.is_empty() && !ip.is_empty() => ip.clone(),
                    None => continue,
                },
            };
            let kind = kind_of(&self.sticky_targets, &name, &info.endpoint);
            let pod = self.pod_mut(&name, &info.endpoint, &ip);
            pod.ready = Some(info.ready);
            pod.gone = false;
            if !ip.is_empty() {
                pod.ip = ip;
            }
            if !info.endpoint.is_empty() {
                pod.endpoint.clone_from(&info.endpoint);
                pod.kind = kind;
            }
            if keep_info {
                pod.info = Some(info);
            }
            listed.insert(name);
        }
        for (name, pod) in &mut self.pods {
            if pod.ready.is_some() && !listed.contains(name) {
                pod.gone = true;
            }
        }
    }

    /// Brings a pod `r` forgot back among the pods, if it is one; true then
    /// (a pod listed again stays; see [`Self::forget_again`] otherwise).
    pub(super) fn unforget(&mut self, key: &str) -> bool {
        match self.forgotten.remove(key) {
            Some(pod) if !self.pods.contains_key(key) => {
                self.pods.insert(key.to_owned(), pod);
                true
            }
            _ => false,
        }
    }

    /// Forgets again the pods a gateway's totals brought back: what they
    /// report of a pod gone at the reset (the last requests it answered
    /// before it went, reported late) is its new baseline, never counted.
    /// Only a listing brings it back.
    pub(super) fn forget_again(&mut self, revived: Vec<String>) {
        for key in revived {
            if let Some(mut pod) = self.pods.remove(&key) {
                pod.reset();
                self.forgotten.insert(key, pod);
            }
        }
    }
}

/// The one item of `items`; `None` with none or several.
pub(super) fn only<'a>(mut items: impl Iterator<Item = &'a PodStats>) -> Option<String> {
    match (items.next(), items.next()) {
        (Some(pod), None) => Some(pod.name.clone()),
        _ => None,
    }
}

/// A row keyed by a sticky target's address (no pod name known) is the
/// Service; one whose replies named a pod is that pod, even when it was
/// reached through the Service (sticky mode's traffic is on its pod's row).
pub(super) fn kind_of(targets: &BTreeSet<String>, name: &str, endpoint: &str) -> PodKind {
    let unnamed = name.is_empty() || name == endpoint;
    if targets.contains(name) || (unnamed && targets.contains(endpoint)) {
        PodKind::Service
    } else {
        PodKind::Pod
    }
}
