"""The fake gateways the step and adapter tests start are what they claim to be once started.

A test that starts a gateway and then runs the preflight relies on the process already showing
the gateway path as argv0 (what `is_live_gateway` reads). Right after `Popen` returns, /proc
may still show an empty cmdline (the kernel has not finished exec) or bash (the script has not
reached `exec -a` yet): a helper that returned then made the preflight see no live gateway.
"""

from __future__ import annotations

from orchestrator.adapters.openshell.marker import is_live_gateway

from tests.support.fakes import gateway_script


def test_a_started_sleep_gateway_is_live_as_soon_as_start_returns(tmp_path, procs):
    gw = gateway_script(tmp_path / "openshell-gateway", "0.0.43")
    not_live = 0
    for _ in range(40):
        p = procs.start([str(gw)])
        if not is_live_gateway(p.pid, str(gw)):
            not_live += 1
        p.kill()
        p.wait(timeout=10)
    assert not_live == 0, f"{not_live} of 40 started gateways were not yet live when start() returned"
