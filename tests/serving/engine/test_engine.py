"""When the engine chose a step: at its start, or scheduling asynchronously while the step before it ran."""

from serving.engine.engine import Engine
from serving.engine.scheduler import EngineRequest
from serving.profiles import load_profile

PROFILE = load_profile("llama-3.1-8b-h100")
ASYNC = PROFILE.with_changes(scheduler={"async_scheduling": True})


def busy_engine(profile) -> tuple[Engine, float]:
    engine = Engine(profile)
    engine.add(EngineRequest("a", 2000, 50))
    step = engine.step(10.0)
    return engine, 10.0 + step.duration_s


def test_a_synchronous_engine_chooses_each_step_when_it_starts():
    engine, next_start = busy_engine(PROFILE)
    assert engine.step_chosen_at(next_start) == next_start


def test_an_asynchronous_engine_chose_its_next_step_when_the_last_one_started():
    engine, next_start = busy_engine(ASYNC)
    assert engine.step_chosen_at(next_start) == 10.0


def test_an_idle_engine_chooses_a_step_when_it_starts_however_it_schedules():
    assert Engine(ASYNC).step_chosen_at(5.0) == 5.0
    engine = Engine(ASYNC)
    engine.add(EngineRequest("a", 16, 1))
    engine.step(1.0)  # its one token ends it
    assert not engine.has_work and engine.step_chosen_at(7.0) == 7.0


def test_a_decode_stretch_taken_at_once_leaves_its_last_steps_start():
    engine, next_start = busy_engine(ASYNC)
    plan = engine.plan_decode(at=next_start)
    engine.apply_decode(plan, 5)
    assert engine.step_chosen_at(next_start + plan.end_of(5)) == next_start + plan.end_of(4)
