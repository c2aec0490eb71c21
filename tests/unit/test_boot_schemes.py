"""Boot schemes as pure functions: the bootloader's part and the application's part."""

from __future__ import annotations

import pytest

from ota_boot.errors import BootConfigurationError, EnvironmentCorruptedError
from ota_boot.schemes import CountingScheme, OrderScheme


def test_counting_scheme_trial_and_fallback() -> None:
    scheme = CountingScheme(slot_var="mender_boot_part", slots=("2", "3"))
    env = scheme.initial("2")
    assert scheme.select(env) == ("2", env)  # no trial: nothing counted
    env = scheme.activate(env, "3", attempts=2, permanent=False)
    slot, env = scheme.select(env)
    assert slot == "3" and scheme.state(env).attempts_left == 1
    slot, env = scheme.select(env)
    assert slot == "3" and scheme.state(env).attempts_left == 0
    slot, env = scheme.select(env)
    assert slot == "2" and not scheme.state(env).in_trial
    env = scheme.activate(env, "3", attempts=2, permanent=True)
    assert scheme.select(env)[0] == "3" and not scheme.state(env).in_trial


def test_counting_scheme_errors() -> None:
    scheme = CountingScheme()
    with pytest.raises(BootConfigurationError):
        scheme.other("C")
    with pytest.raises(EnvironmentCorruptedError):
        scheme.state({"boot_slot": "A", "upgrade_available": "1", "bootcount": "x"})
    assert scheme.state({}).slot == "A"
    assert scheme.state({"upgrade_available": "1", "bootcount": ""}).attempts_left == 3


def test_order_scheme_like_rauc() -> None:
    scheme = OrderScheme(attempts=3)
    env = scheme.initial("A")
    slot, env = scheme.select(env)
    assert slot == "A" and env["BOOT_A_LEFT"] == "2"
    assert scheme.state(env).in_trial  # every start counts until marked good
    env = scheme.confirm(env)
    assert env["BOOT_A_LEFT"] == "3"
    env = scheme.activate(env, "B", attempts=3, permanent=False)
    assert env["BOOT_ORDER"] == "B A"
    for _ in range(3):
        slot, env = scheme.select(env)
        assert slot == "B"
    slot, env = scheme.select(env)
    assert slot == "A"
    env = scheme.revert({**env, "BOOT_ORDER": "A B", "BOOT_B_LEFT": "0"})
    assert env["BOOT_ORDER"] == "B A" and env["BOOT_A_LEFT"] == "0" and env["BOOT_B_LEFT"] == "3"


def test_order_scheme_with_nothing_left_resets() -> None:
    scheme = OrderScheme()
    env = {"BOOT_ORDER": "B A", "BOOT_A_LEFT": "0", "BOOT_B_LEFT": "0"}
    assert scheme.state(env).attempts_left == 0
    slot, env = scheme.select(env)
    assert slot == "B" and env["BOOT_B_LEFT"] == "2" and env["BOOT_A_LEFT"] == "3"
    assert scheme.state({"BOOT_ORDER": "X Y"}).slot == "A"
    with pytest.raises(BootConfigurationError):
        scheme.other("X")
