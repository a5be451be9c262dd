"""Recorded venue answers replayed against the simulators (Upbit, Bybit, OKX, Bitget).

Each file under ``tests/venues/recorded/<venue>/`` holds one answer the venue gave, copied
untouched from public material (its ``source``: ccxt's recorded answers or the venue's docs), and
a ``replay``: the same request made against the simulator through ccxt's own signed client
(optional ``setup`` calls first, whose answers fill ``{name}`` placeholders). The simulator's
answer must have every field of the recorded one with the same JSON type, and the same value for
the fields named in ``same`` (states, sides, order types, error codes and messages). Fields in
``exempt`` keep presence and type but not value (ids, times, the replay's own amounts), each with
its reason; ``not_modelled`` names fields the simulator does not produce, with why.

Paths: ``a.b`` into objects, ``[]`` for the elements of a list (the first of each is compared).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ccxt
import pytest

from orders.exchanges import adapter_for

RECORDED = Path(__file__).parent / "recorded"
VENUES = ("upbit", "bybit", "okx", "bitget")
CASES = sorted(p for venue in VENUES for p in (RECORDED / venue).glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def at(value: Any, path: str) -> Any:
    """``value`` at a dotted path ("data[0].ordId", "result.list[0]"); "" is the value itself."""
    for part in [p for p in path.replace("[", ".[").split(".") if p]:
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    return value


def fill(params: Any, saved: dict[str, str]) -> Any:
    if isinstance(params, dict):
        return {k: fill(v, saved) for k, v in params.items()}
    if isinstance(params, list):
        return [fill(v, saved) for v in params]
    if isinstance(params, str):
        return params.format(**saved) if "{" in params else params
    return params


def body_of(exc: ccxt.BaseError) -> Any:
    """The venue's JSON body in a ccxt exception ("upbit {"error": …}")."""
    text = str(exc)
    return json.loads(text[text.index("{") :])


def kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def differences(recorded: Any, actual: Any, case: dict[str, Any], path: str = "") -> list[str]:
    """How the simulator's answer differs from the recorded one (empty: none)."""
    if path in case["not_modelled"]:
        return []
    found: list[str] = []
    if kind(recorded) != kind(actual) and recorded is not None:
        return [
            f"{path or '<answer>'}: {kind(actual)} {actual!r}, the venue answers {kind(recorded)} {recorded!r}"
        ]
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            sub = f"{path}.{key}" if path else key
            if sub in case["not_modelled"]:
                continue
            if key not in actual:
                found.append(f"{sub}: missing")
                continue
            found += differences(value, actual[key], case, sub)
    elif isinstance(recorded, list):
        if recorded and not actual:
            found.append(f"{path}: empty, the venue answers {len(recorded)} element(s)")
        elif recorded:
            found += differences(recorded[0], actual[0], case, f"{path}[]")
    elif path in case["same"] and recorded != actual:
        found.append(f"{path}: {actual!r}, the venue answers {recorded!r}")
    return found


def replay(case: dict[str, Any], account: Any) -> Any:
    spec = case["replay"]
    adapter = adapter_for(account)
    adapter.market(spec["market_type"], spec["market"])
    client, _lock = adapter._client(spec["market_type"])
    saved: dict[str, str] = {}
    for step in spec.get("setup", []):
        answer = getattr(client, step["call"])(fill(step["params"], saved))
        saved.update({name: str(at(answer, where)) for name, where in step.get("save", {}).items()})
    params = fill(spec["params"], saved)
    if spec.get("error"):
        with pytest.raises(ccxt.BaseError) as caught:
            getattr(client, spec["call"])(params)
        return body_of(caught.value)
    return at(getattr(client, spec["call"])(params), case.get("answer_at", ""))


def test_every_venue_has_its_five_kinds_of_recorded_answer() -> None:
    for venue in VENUES:
        kinds = {load(p)["what"].split(":")[0] for p in (RECORDED / venue).glob("*.json")}
        assert {"placement", "lookup", "open orders", "cancel", "error"} <= kinds, (venue, kinds)
        for path in (RECORDED / venue).glob("*.json"):
            case = load(path)
            assert case["source"].get("url") or case["source"].get("repo"), path
            assert all(reason for reason in case["exempt"].values()), path
            for field in case["same"]:
                assert field not in case["exempt"], (path, field)


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_simulator_answers_as_the_venue_recorded(
    path: Path, request: pytest.FixtureRequest, db: None
) -> None:
    case = load(path)
    account = request.getfixturevalue(f"{case['venue']}_account")()

    actual = replay(case, account)

    assert differences(case["answer"], actual, case) == []
