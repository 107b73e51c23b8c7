"""The timeline format: parsing, defaults and every refusal, without moviepy."""

from __future__ import annotations

import array
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderstate.exceptions import RenderStateError
from renderstate.rendering.timeline import (
    Limits,
    Scene,
    Soundtrack,
    Timeline,
    TimelineError,
    check_frames,
    check_output_format,
    frame_count,
    load_timeline,
    parse_color,
    parse_timeline,
    sample_timeline,
    timeline_json_schema,
)

from .cases import BAD_TIMELINES


def test_minimal_timeline_gets_defaults() -> None:
    """One scene with a duration is a timeline; everything else has a default."""
    timeline = parse_timeline({"scenes": [{"duration": 2}]})
    assert timeline == Timeline(scenes=(Scene(duration=2.0),))
    assert timeline.duration == 2.0
    assert timeline.soundtrack is None


def test_timeline_defaults_apply_to_scenes_that_do_not_override_them() -> None:
    """Top-level background and text_color are the scenes' defaults."""
    timeline = parse_timeline(
        {
            "background": "#102030",
            "text_color": [1, 2, 3],
            "scenes": [{"duration": 1}, {"duration": 1, "background": "#fff", "title": "Hi"}],
        }
    )
    first, second = timeline.scenes
    assert first.background == (0x10, 0x20, 0x30)
    assert first.text_color == (1, 2, 3)
    assert second.background == (255, 255, 255)
    assert second.title == "Hi"


def test_crossfades_overlap_scenes() -> None:
    """A crossfade starts a scene before the previous one ends, shortening the video."""
    timeline = parse_timeline(
        {"scenes": [{"duration": 2}, {"duration": 2, "crossfade": 0.5}, {"duration": 1}]}
    )
    assert timeline.starts == (0.0, 1.5, 3.5)
    assert timeline.duration == 4.5


def test_a_crossfade_that_exactly_fills_its_room_is_accepted() -> None:
    """0.5 s - 0.4 s is 0.09999999999999998 in floats: a 0.1 s crossfade after it fits
    exactly, as written, and used to be refused as "0.1 s is longer than the 0.1 s"."""
    scenes = [
        {"duration": 3},
        {"duration": 0.5, "crossfade": 0.4},
        {"duration": 3.2, "crossfade": 0.1},
        {"duration": 0.3, "crossfade": 0.3},
    ]
    timeline = parse_timeline({"scenes": scenes})
    assert timeline.duration == pytest.approx(6.2)
    with pytest.raises(TimelineError, match=re.escape("0.101 s is longer than the 0.1 s")):
        parse_timeline({"scenes": [*scenes[:2], {"duration": 3.2, "crossfade": 0.101}]})


def test_colours_in_every_accepted_spelling() -> None:
    """Colours are '#rgb', '#rrggbb' or [r, g, b]."""
    assert parse_color("#0af", field="c") == (0, 170, 255)
    assert parse_color(" #00AAFF ", field="c") == (0, 170, 255)
    assert parse_color([0, 170, 255], field="c") == (0, 170, 255)


def test_soundtrack_tone_and_file(tmp_path: Path) -> None:
    """A soundtrack is a tone frequency or a file resolved against base_dir."""
    (tmp_path / "music.wav").write_bytes(b"RIFF")
    tone = parse_timeline({"scenes": [{"duration": 1}], "soundtrack": {"tone": 440}})
    assert tone.soundtrack == Soundtrack(tone=440.0)
    music = parse_timeline(
        {"scenes": [{"duration": 1}], "soundtrack": {"file": "music.wav", "volume": 0.5}},
        base_dir=tmp_path,
    )
    assert music.soundtrack == Soundtrack(file=tmp_path / "music.wav", volume=0.5)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A base_dir with a picture, a sound and two symlinks out to a secret file beside it."""
    base = tmp_path / "media"
    (base / "pictures").mkdir(parents=True)
    (base / "pictures" / "one.png").write_bytes(b"")
    (base / "music.wav").write_bytes(b"RIFF")
    (tmp_path / "secret.txt").write_text("root:x:0:0", encoding="utf-8")
    (base / "link.png").symlink_to(tmp_path / "secret.txt")
    (base / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    return base


def _with_image(path: str) -> dict[str, Any]:
    return {"scenes": [{"duration": 1}, {"duration": 1, "image": path}]}


def _with_audio(path: str) -> dict[str, Any]:
    return {"scenes": [{"duration": 1}], "soundtrack": {"file": path}}


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        pytest.param("{secret}", "absolute path", id="absolute"),
        pytest.param("/etc/passwd", "absolute path", id="etc-passwd"),
        pytest.param("../secret.txt", "'..' segment", id="dotdot"),
        pytest.param("pictures/../../secret.txt", "'..' segment", id="nested-dotdot"),
        pytest.param("pictures/../pictures/one.png", "'..' segment", id="dotdot-back-inside"),
        pytest.param("link.png", "symbolic link", id="symlinked-file"),
        pytest.param("linked-dir/secret.txt", "symbolic link", id="symlinked-dir"),
    ],
)
@pytest.mark.parametrize(
    ("field", "build"), [("image", _with_image), ("soundtrack.file", _with_audio)]
)
def test_project_timeline_paths_must_stay_inside_base_dir(
    media: Path, path: str, reason: str, field: str, build: Any
) -> None:
    """A mapping timeline naming a file outside base_dir is refused, naming scene and field."""
    path = path.format(secret=media.parent / "secret.txt")
    with pytest.raises(TimelineError) as caught:
        parse_timeline(build(path), base_dir=media)
    error = caught.value
    assert (error.scene, error.field) == (1 if field == "image" else None, field)
    assert reason in error.problem
    assert "give a path relative to it" in error.problem
    assert "allow_outside_base_dir=True" in error.problem


def test_project_timeline_paths_inside_base_dir_are_accepted(media: Path) -> None:
    """Relative paths inside base_dir, and symlinks that stay inside it, are accepted."""
    (media / "alias.png").symlink_to(media / "pictures" / "one.png")
    data = {
        "scenes": [
            {"duration": 1, "image": "pictures/one.png"},
            {"duration": 1, "image": "alias.png"},
        ],
        "soundtrack": {"file": "./music.wav"},
    }
    timeline = parse_timeline(data, base_dir=media)
    assert [s.image for s in timeline.scenes] == [media / "pictures/one.png", media / "alias.png"]
    assert timeline.soundtrack == Soundtrack(file=media / "music.wav")


def test_allow_outside_base_dir_accepts_any_readable_file(media: Path) -> None:
    """allow_outside_base_dir=True lets a trusted mapping name absolute and '..' paths."""
    secret = media.parent / "secret.txt"
    data = {**_with_image("../secret.txt"), "soundtrack": {"file": str(secret)}}
    timeline = parse_timeline(data, base_dir=media, allow_outside_base_dir=True)
    assert timeline.scenes[1].image == media / "../secret.txt"
    assert timeline.soundtrack == Soundtrack(file=secret)


def test_timeline_files_are_trusted_with_paths_outside_their_directory(media: Path) -> None:
    """load_timeline accepts '..' and absolute paths: the operator wrote the file."""
    path = media / "timeline.json"
    secret = media.parent / "secret.txt"
    path.write_text(
        json.dumps({**_with_image("../secret.txt"), "soundtrack": {"file": str(secret)}}),
        encoding="utf-8",
    )
    timeline = load_timeline(path)
    assert timeline.scenes[1].image == media / "../secret.txt"
    assert timeline.soundtrack == Soundtrack(file=secret)


@pytest.mark.parametrize(
    ("data", "scene", "field"),
    [pytest.param(data, scene, field, id=name) for name, data, scene, field in BAD_TIMELINES],
)
def test_bad_timeline_names_scene_and_field(
    data: Any, scene: int | None, field: str, tmp_path: Path
) -> None:
    """Each invalid field is refused with the scene index and field name it concerns."""
    with pytest.raises(TimelineError) as caught:
        parse_timeline(data, base_dir=tmp_path)
    error = caught.value
    assert (error.scene, error.field) == (scene, field)
    assert repr(field) in str(error)
    if scene is not None:
        assert f"scene {scene}" in str(error)
    assert "Fix the timeline" in str(error)


def test_timeline_error_is_a_value_error_that_pickles() -> None:
    """TimelineError is a RenderStateError and ValueError and crosses processes intact."""
    error = TimelineError(scene=2, field="duration", problem="must be positive")
    assert isinstance(error, RenderStateError)
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.scene, copy.field, copy.problem, str(copy)) == (
        2,
        "duration",
        error.problem,
        str(error),
    )


def test_check_output_format_refuses_odd_sizes() -> None:
    """An odd frame side is refused with the even sizes around it as the fix."""
    assert check_output_format(160, 90, 10) == (160, 90, 10.0)
    with pytest.raises(TimelineError, match="use 88 or 90") as caught:
        check_output_format(160, 89, 10)
    assert caught.value.field == "height"


TOML_TIMELINE = """\
width = 160
height = 90
fps = 10
background = "#203040"

[[scenes]]
duration = 1
title = "One"
image = "pictures/one.png"

[[scenes]]
duration = 1
crossfade = 0.5
title = "Two"

[soundtrack]
tone = 440
volume = 0.5
"""


def test_toml_and_json_files_load_the_same_timeline(tmp_path: Path) -> None:
    """A TOML file and its JSON twin give equal timelines, paths relative to the file."""
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "one.png").write_bytes(b"")
    toml_path = tmp_path / "timeline.toml"
    toml_path.write_text(TOML_TIMELINE, encoding="utf-8")
    json_path = tmp_path / "timeline.json"
    json_path.write_text(
        json.dumps(
            {
                "width": 160,
                "height": 90,
                "fps": 10,
                "background": "#203040",
                "scenes": [
                    {"duration": 1, "title": "One", "image": "pictures/one.png"},
                    {"duration": 1, "crossfade": 0.5, "title": "Two"},
                ],
                "soundtrack": {"tone": 440, "volume": 0.5},
            }
        ),
        encoding="utf-8",
    )
    from_toml = load_timeline(toml_path)
    assert from_toml == load_timeline(json_path)
    assert from_toml.scenes[0].image == tmp_path / "pictures" / "one.png"
    assert (from_toml.width, from_toml.height, from_toml.fps) == (160, 90, 10.0)


@pytest.mark.parametrize(
    ("name", "content"),
    [("t.json", "{not json"), ("t.toml", "scenes = [ {"), ("t.yaml", "scenes: []")],
)
def test_unreadable_timeline_file_is_a_timeline_error(
    tmp_path: Path, name: str, content: str
) -> None:
    """Broken JSON/TOML or an unknown extension is a TimelineError on the 'file' field."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TimelineError) as caught:
        load_timeline(path)
    assert caught.value.field == "file"


def test_missing_timeline_file_is_a_timeline_error(tmp_path: Path) -> None:
    """A timeline file that does not exist is refused with its path in the message."""
    with pytest.raises(TimelineError, match="cannot be read"):
        load_timeline(tmp_path / "absent.json")


def test_sample_timeline_is_small_and_short() -> None:
    """The demo's sample timeline is valid, 640x360 at 24 fps, a few seconds, with a tone."""
    timeline = sample_timeline()
    assert (timeline.width, timeline.height, timeline.fps) == (640, 360, 24.0)
    assert 4 <= timeline.duration <= 6
    assert len(timeline.scenes) == 3
    assert all(scene.title for scene in timeline.scenes)
    assert timeline.soundtrack is not None
    assert timeline.soundtrack.tone is not None


def test_importing_the_timeline_module_does_not_import_moviepy() -> None:
    """Validating a timeline never pays for moviepy, numpy or Pillow."""
    code = (
        "import sys, renderstate.rendering, renderstate.rendering.timeline as t\n"
        "t.sample_timeline()\n"
        "heavy = {'moviepy', 'numpy', 'PIL', 'proglog'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_documented_json_and_toml_examples_are_the_same_valid_timeline(tmp_path: Path) -> None:
    """docs/timeline.md's JSON and TOML examples parse to one timeline of the stated length."""
    text = (Path(__file__).parents[2] / "docs" / "timeline.md").read_text(encoding="utf-8")
    blocks = dict(re.findall(r"```(json|toml)\n(.*?)```", text, re.DOTALL))
    for relative in ("pictures/beach.jpg", "music/theme.mp3"):
        (tmp_path / relative).parent.mkdir(exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    (tmp_path / "t.json").write_text(blocks["json"], encoding="utf-8")
    (tmp_path / "t.toml").write_text(blocks["toml"], encoding="utf-8")
    timeline = load_timeline(tmp_path / "t.json")
    assert timeline == load_timeline(tmp_path / "t.toml")
    assert timeline.duration == 8.5


def test_limits_are_configurable() -> None:
    """A trusted timeline may go beyond the default limits when the caller raises them."""
    data = {"fps": 0.5, "scenes": [{"duration": 7200}]}
    with pytest.raises(TimelineError):
        parse_timeline(data)
    timeline = parse_timeline(data, limits=Limits(max_duration=10_000, min_fps=0.25))
    assert timeline.duration == 7200
    assert timeline.fps == 0.5
    with pytest.raises(TimelineError, match="from 1 to 30"):
        check_output_format(160, 90, 60, limits=Limits(max_fps=30))


@pytest.mark.parametrize(
    "limits",
    [
        {"max_duration": 0},
        {"min_fps": -1},
        {"max_fps": float("inf")},
        {"min_fps": 30, "max_fps": 24},
        {"max_audio_bytes": 0},
    ],
)
def test_nonsense_limits_are_refused(limits: dict[str, Any]) -> None:
    """Limits that no timeline could meet are a ValueError when they are built."""
    with pytest.raises(ValueError, match=r"limit|max_fps"):
        Limits(**limits)


def test_huge_integer_message_stays_short() -> None:
    """A 400-digit number is summarised in the message, not printed whole."""
    with pytest.raises(TimelineError) as caught:
        parse_timeline({"scenes": [{"duration": 10**400}]})
    assert len(str(caught.value)) < 300
    assert "401 characters" in str(caught.value)


def test_a_frame_long_video_is_accepted() -> None:
    """Exactly one frame is the shortest video; the bound is checked against the fps."""
    timeline = parse_timeline({"fps": 25, "scenes": [{"duration": 0.04}]})
    assert timeline.duration == 0.04
    with pytest.raises(TimelineError, match="shorter than one frame"):
        check_frames(0.04, 24)


@pytest.mark.parametrize(
    ("duration", "fps", "frames"),
    [(4.6, 25, 115), (8.2, 30, 246), (0.1 + 0.2, 10, 3), (13.4, 7, 93), (0.04, 25, 1), (2.5, 1, 2)],
)
def test_frame_count_is_exact_for_durations_written_in_decimal(
    duration: float, fps: float, frames: int
) -> None:
    """Whole frames of a duration as written (4.6 * 25 is 114.99999999999999 in floats)."""
    assert frame_count(duration, fps) == frames
    check_frames(duration, fps)


# ---------------------------------------------------------------- several faults at once


@pytest.mark.parametrize(
    ("data", "scene", "field"),
    [
        # A timeline-wide key is read before the scenes, a missing file included.
        ({"font": "absent.ttf", "scenes": [{"duration": -1}]}, None, "font"),
        # Within a scene: duration, crossfade, font, background, image, title, subtitle.
        ({"scenes": [{"duration": 1, "image": "absent.png", "title": 5}]}, 0, "image"),
        (
            {"scenes": [{"duration": 1, "image": "absent.png", "background": "red"}]},
            0,
            "background",
        ),
        # Scene 0's missing picture before scene 1's bad value.
        ({"scenes": [{"duration": 1, "image": "absent.png"}, {"duration": 0}]}, 0, "image"),
        # An unknown key before the values, the width/height pair before the frame rate.
        ({"fps": 0, "scenes": [{"duration": 1}], "titel": "x"}, None, "titel"),
        ({"width": 160, "fps": 0, "scenes": [{"duration": 1}]}, None, "height"),
        # The soundtrack needs one of file and tone before its volume is read.
        ({"scenes": [{"duration": 1}], "soundtrack": {"volume": -1}}, None, "soundtrack"),
        (
            {"scenes": [{"duration": 1}], "soundtrack": {"volume": -1, "tone": 0}},
            None,
            "soundtrack.volume",
        ),
    ],
)
def test_several_faults_report_the_first_in_reading_order(
    data: Any, scene: int | None, field: str, tmp_path: Path
) -> None:
    """With several faults, the one reported is the first in the order the timeline is read."""
    with pytest.raises(TimelineError) as caught:
        parse_timeline(data, base_dir=tmp_path)
    assert (caught.value.scene, caught.value.field) == (scene, field)


def test_odd_sequences_are_refused_not_crashed_on() -> None:
    """A set is no colour (it has no order); an array of three channels is one."""
    with pytest.raises(TimelineError, match="is not a colour"):
        parse_color({1, 2, 3}, field="background")
    assert parse_color(array.array("i", [1, 2, 3]), field="background") == (1, 2, 3)
    with pytest.raises(TimelineError, match="non-empty list of scenes"):
        parse_timeline({"scenes": iter([{"duration": 1}])})


# ---------------------------------------------------------------- JSON Schema

# Faults a JSON Schema cannot see: files, crossfades against their neighbours, the video's
# total length against the limit and the frame rate, values JSON cannot carry, and 160.0 as
# a width (to JSON Schema an integer; parse_timeline wants the integer written as one).
SCHEMA_BLIND = {
    "float width",
    "missing image",
    "image name too long",
    "missing audio file",
    "soundtrack name too long",
    "first scene crossfade",
    "crossfade longer than the previous scene",
    "crossfades that overlap each other",
    "one-day scene",
    "1e12 s scene",
    "scenes adding up to more than an hour",
    "shorter than a frame",
    "infinite duration",
    "huge integer duration",
    "huge integer crossfade",
    "lone surrogate in a subtitle",
}


def _docs_json_timeline() -> Any:
    text = (Path(__file__).parents[2] / "docs" / "timeline.md").read_text(encoding="utf-8")
    return json.loads(dict(re.findall(r"```(json|toml)\n(.*?)```", text, re.DOTALL))["json"])


def _real_timelines() -> list[Any]:
    sample = Path(__file__).parents[2] / "src/renderstate/rendering/sample_timeline.json"
    return [
        json.loads(sample.read_text(encoding="utf-8")),
        _docs_json_timeline(),
        _tomllib().loads(TOML_TIMELINE),
        {"scenes": [{"duration": 2}]},
        {
            "width": None,
            "height": None,
            "fps": None,
            "font": None,
            "background": [16, 32, 48],
            "text_color": " #ABC ",
            "scenes": [
                {"duration": 0.5, "image": None, "font": None, "title": "Été 中"},
                {"duration": 3.2, "crossfade": 0.4, "text_color": [0, 0, 255], "subtitle": ""},
            ],
            "soundtrack": {"file": None, "tone": 19999.5, "volume": 0},
        },
        {"scenes": [{"duration": 1}], "soundtrack": {"file": "music/theme.mp3", "tone": None}},
    ]


def _tomllib() -> Any:
    return pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")


def test_json_schema_is_valid_draft_2020_12() -> None:
    """timeline_json_schema() is a valid 2020-12 JSON Schema that survives JSON encoding."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = timeline_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads(json.dumps(schema)) == schema
    assert schema["required"] == ["scenes"]
    assert schema["additionalProperties"] is False


def test_json_schema_accepts_real_timelines(tmp_path: Path) -> None:
    """The sample, the documented example and timelines using every key pass the schema."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(timeline_json_schema())
    for relative in ("pictures/beach.jpg", "music/theme.mp3", "pictures/one.png"):
        (tmp_path / relative).parent.mkdir(exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    for data in _real_timelines():
        parse_timeline(data, base_dir=tmp_path)
        assert not list(validator.iter_errors(data)), data


@pytest.mark.parametrize(
    "data",
    [pytest.param(data, id=name) for name, data, _, _ in BAD_TIMELINES if name not in SCHEMA_BLIND],
)
def test_json_schema_refuses_what_parse_timeline_refuses(data: Any) -> None:
    """Every bad timeline whose fault a schema can see is refused by the schema too."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(timeline_json_schema())
    assert list(validator.iter_errors(data))


def test_json_schema_carries_the_limits() -> None:
    """The frame rates of the given Limits are the schema's fps bounds."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = timeline_json_schema(limits=Limits(min_fps=0.5, max_fps=30))
    rate = schema["properties"]["fps"]["anyOf"][0]
    assert (rate["minimum"], rate["maximum"]) == (0.5, 30)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"fps": 0.5, "scenes": [{"duration": 2}]})
    assert not validator.is_valid({"fps": 60, "scenes": [{"duration": 2}]})


_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 8000),
    st.floats(-1, 30000, allow_nan=False),
    st.sampled_from(["", " ", "#fff", "#12_345", " #00aaFF ", "red", "a\x00b", "Hi"]),
    st.lists(st.integers(-1, 256), max_size=4),
)


def _maybe(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.dictionaries(st.sampled_from(keys), values, max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    top=_maybe(["width", "height", "fps", "background", "text_color", "sceens"], _JSON_VALUES),
    scenes=st.lists(
        st.fixed_dictionaries(
            {"duration": st.one_of(st.floats(0.5, 3), _JSON_VALUES)},
            optional=dict.fromkeys(
                ("background", "title", "subtitle", "text_color", "crossfade", "titel"),
                _JSON_VALUES,
            ),
        ),
        max_size=3,
    ),
    soundtrack=st.one_of(st.none(), _maybe(["tone", "volume", "loop"], _JSON_VALUES)),
)
def test_json_schema_never_refuses_a_timeline_parse_timeline_accepts(
    top: dict[str, Any], scenes: list[dict[str, Any]], soundtrack: Any
) -> None:
    """A JSON timeline parse_timeline accepts is valid against the schema, and one the schema
    refuses is refused by parse_timeline (the schema is parse_timeline's, not a copy)."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(timeline_json_schema())
    data = {**top, "scenes": scenes, "soundtrack": soundtrack}
    try:
        parse_timeline(data)
    except TimelineError:
        return
    assert validator.is_valid(data), list(validator.iter_errors(data))


def test_validation_without_pydantic_says_how_to_install_it() -> None:
    """Without pydantic the timeline's classes still import; validating names the extra."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pydantic', 'pydantic_core'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from renderstate.rendering.timeline import Scene, Timeline, parse_timeline\n"
        "Timeline(scenes=(Scene(duration=1.0),))\n"
        "try:\n"
        "    parse_timeline({'scenes': [{'duration': 1}]})\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "pip install 'renderstate[render]'" in run.stdout
