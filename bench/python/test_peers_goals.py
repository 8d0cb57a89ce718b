"""peers.check_goals on hand-made samples (no timing): a goal whose
denominator p50 is 0 in every repetition is reported as not resolved
instead of crashing the run."""
import peers


class _M:
    def __init__(self, samples):
        self.samples = samples


def _goals(cachee_p50, peer, peer_p50):
    measures = {("uniform", "64B", "get"): _M({"cachee": {"p50": cachee_p50},
                                                peer: {"p50": peer_p50}})}
    result = {"dists": ["uniform"]}
    assert peers.check_goals(measures, result) == 0
    return {(g["op"], g["peer"]): g for g in result["goals"]
            if g["dataset"] == "64B" and g["op"] == "get"}[("get", peer)]


def test_a_dict_p50_of_zero_is_not_resolved():
    g = _goals([300.0, 310.0], "dict", [0.0, 0.0])
    assert g["value"] is None and g["met"] is None


def test_a_cachee_p50_of_zero_is_not_resolved_against_lmdb():
    g = _goals([0.0, 0.0], "lmdb", [600.0, 640.0])
    assert g["value"] is None and g["met"] is None


def test_measured_ratios_are_judged():
    g = _goals([300.0, 300.0], "dict", [100.0, 100.0])
    assert g["value"]["median"] == 3.0 and g["met"] is False
    g = _goals([300.0, 300.0], "lmdb", [900.0, 900.0])
    assert g["value"]["median"] == 3.0 and g["met"] is True
