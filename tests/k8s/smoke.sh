#!/usr/bin/env bash
# Smoke test of the test cluster made by `scripts/k8s-env up NAME`:
#   KUBECONFIG=$(scripts/k8s-env kubeconfig NAME) tests/k8s/smoke.sh
# Checks that every part the Rust tests rely on is really there: the pinned
# version, Ready KWOK nodes, the scheduler + KWOK (a bare Pod ends Running and
# Ready), the controller-manager's garbage collector, and CRDs.
# Prints "smoke: N passed, M failed"; exits non-zero on any failure.
set -euo pipefail

WANT_VERSION="${WANT_VERSION:-v1.34.4}"
WANT_NODES="${WANT_NODES:-2}"
[ -n "${KUBECONFIG:-}" ] || { echo "smoke: KUBECONFIG is not set (scripts/k8s-env up NAME prints it)" >&2; exit 1; }
[ -s "$KUBECONFIG" ] || { echo "smoke: KUBECONFIG=$KUBECONFIG does not exist" >&2; exit 1; }
k() { kubectl --request-timeout=10s "$@"; }
k get --raw /readyz >/dev/null 2>&1 || { echo "smoke: the API server in $KUBECONFIG does not answer" >&2; exit 1; }

NS="smoke-$$-$RANDOM"
CRD_GROUP="smoke.rendezvous.test"
PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
cleanup() {
  k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  k delete crd "widgets.$CRD_GROUP" --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

# poll SECONDS COMMAND...: true once COMMAND succeeds within SECONDS.
poll() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}

# 1. version
v="$(k get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')"
if [ "$v" = "$WANT_VERSION" ]; then pass "/version is $v"; else fail "/version is '$v', want $WANT_VERSION"; fi

# 2. nodes Ready
ready="$(k get nodes --no-headers -o custom-columns=R:'.status.conditions[?(@.type=="Ready")].status' | grep -cx True || true)"
if [ "$ready" -ge "$WANT_NODES" ]; then pass "$ready nodes Ready"; else fail "$ready nodes Ready, want $WANT_NODES"; k get nodes || true; fi

k create namespace "$NS" >/dev/null
# The ServiceAccount admission plugin needs the namespace's default
# ServiceAccount, made by the controller-manager.
poll 60 k -n "$NS" get serviceaccount default || fail "no default ServiceAccount in $NS after 60s"

# 3. a bare Pod is scheduled onto a KWOK node, which marks it Running and Ready
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: bare}
spec:
  containers: [{name: app, image: registry.invalid/not-pulled:1}]
YAML
if k -n "$NS" wait pod/bare --for=condition=Ready --timeout=60s >/dev/null; then
  pass "bare Pod Running+Ready on node $(k -n "$NS" get pod bare -o jsonpath='{.spec.nodeName}') (phase $(k -n "$NS" get pod bare -o jsonpath='{.status.phase}'))"
else
  fail "bare Pod not Ready within 60s"; k -n "$NS" get pod bare -o wide || true
fi

# 4. garbage collection: deleting the owner deletes the dependent Pod
k -n "$NS" create configmap owner >/dev/null
uid="$(k -n "$NS" get configmap owner -o jsonpath='{.metadata.uid}')"
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: owned
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: owner, uid: "$uid"}]
spec:
  containers: [{name: app, image: registry.invalid/not-pulled:1}]
YAML
k -n "$NS" get pod owned >/dev/null || fail "the owned Pod was not created"
k -n "$NS" delete configmap owner --wait=false >/dev/null
gone() { ! k -n "$NS" get pod owned >/dev/null 2>&1; }
start=$SECONDS
if poll 60 gone; then
  pass "garbage collector deleted the owned Pod $((SECONDS - start))s after its owner"
else
  fail "owned Pod still present 60s after its owner ConfigMap was deleted (is kube-controller-manager running?)"
fi

# 5. a CRD can be applied and an object of it created
k apply -f - >/dev/null <<YAML
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.$CRD_GROUP}
spec:
  group: $CRD_GROUP
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
YAML
WIDGET="apiVersion: $CRD_GROUP/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}"
# The first create can race the discovery of the new kind: retry.
apply_widget() { k -n "$NS" apply -f - <<<"$WIDGET"; }
if k wait "crd/widgets.$CRD_GROUP" --for=condition=Established --timeout=30s >/dev/null \
  && poll 30 apply_widget
then
  size="$(k -n "$NS" get widget w1 -o jsonpath='{.spec.size}')"
  if [ "$size" = 3 ]; then pass "CRD established and a Widget created"; else fail "Widget read back with size '$size'"; fi
else
  fail "CRD not established or Widget not created"
fi

echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
