"""deploy/pi/emulated-check.sh without the emulation: its arguments, and the plan it would carry out.

The emulated run itself (a Debian arm64 root under qemu-user) takes many minutes; it is run by
hand and quoted in the README. These tests check the pieces CI can afford: argument handling,
and that the install commands it builds are the install guide's and are a valid `fer-edge run`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from edge.cli import build_parser
from edge.cli.run import RunConfig

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "pi" / "emulated-check.sh"
DETECTOR_FILE = "blaze_face_short_range.tflite"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the script is a bash script")


def run_script(*args: str, env_extra: dict[str, str] | None = None, drop_env=("FER_EDGE_MODEL_DIR",
               "FER_EDGE_MODEL_URL_BASE", "FER_EDGE_PI_CACHE")) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    env.update(env_extra or {})
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def video(tmp_path) -> Path:
    # The plan never opens the video, but the script insists that it exists.
    path = tmp_path / "clip one.mp4"
    path.write_bytes(b"\x00" * 16)
    return path


def readme_pi_section() -> str:
    """The install guide's Raspberry Pi section (docs/install.md, linked from the README)."""
    text = (REPO / "docs" / "install.md").read_text(encoding="utf-8")
    start = text.index("## Raspberry Pi")
    end = text.find("\n## ", start)
    return text[start:end if end > 0 else None]


def plan_lines(out: str, prefix: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(prefix)]


def test_plan_installs_the_plain_runtime_as_the_readme_says(tmp_path, video):
    res = run_script("--print-plan", "--model-url-base", "http://10.0.0.1/models", str(video), str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    steps = plan_lines(out, "step 5 as pi")
    install = next(s for s in steps if "pip install" in s)
    assert install == "cd ~/fer-edge && /opt/fer-edge/venv/bin/pip install ."  # no extras: no [all], no TF
    assert not re.search(r"tensorflow|mediapipe|\[", " ".join(steps))
    assert "python3 -m venv --system-site-packages /opt/fer-edge/venv" in steps
    pull = next(s for s in steps if "models pull" in s)
    assert pull.endswith("--url-base http://10.0.0.1/models")
    # Every command the Pi user types is in the install guide's Raspberry Pi section, word for word.
    readme = readme_pi_section()
    apt = re.search(r"\[README: (.*)\]", next(iter(plan_lines(out, "step 4")))).group(1)
    for cmd in [apt, *(s.replace(" --url-base http://10.0.0.1/models", "") for s in steps)]:
        assert cmd in readme, f"docs/install.md's Raspberry Pi section lacks: {cmd}"


def test_plan_runs_a_valid_headless_fer_edge_command_writing_outdir_name_jsonl(tmp_path, video):
    res = run_script("--print-plan", str(video), str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert f"video: {video} -> {tmp_path / 'out'}/clip one.jsonl" in res.stdout
    run = plan_lines(res.stdout, "step 7 as pi")[0]
    words = shlex.split(run)  # as the shell inside the root splits it (the space is quoted)
    assert words[0] == "FER_EDGE_MODEL_DIR=/opt/fer-edge/models"
    assert words[1] == "/opt/fer-edge/venv/bin/fer-edge"
    args = build_parser().parse_args(words[2:])
    cfg = RunConfig.from_args(args)
    assert cfg.headless and cfg.source == "/home/pi/fer-edge-check/clip one.mp4"
    assert cfg.jsonl == "/home/pi/fer-edge-check/out/clip one.jsonl"


def test_plan_serves_a_models_dir_as_a_local_mirror_and_flags_beat_the_environment(tmp_path, video):
    models = tmp_path / "models"
    models.mkdir()
    (models / DETECTOR_FILE).write_bytes(b"placeholder: the plan never reads it")
    res = run_script("--print-plan", str(video), str(tmp_path / "out"), env_extra={"FER_EDGE_MODEL_DIR": str(models)})
    assert res.returncode == 0, res.stderr
    pull = next(s for s in plan_lines(res.stdout, "step 5 as pi") if "models pull" in s)
    assert pull.endswith("--url-base file:///home/pi/fer-edge-check/mirror")
    assert f"{models}/{DETECTOR_FILE} -> /home/pi/fer-edge-check/mirror/" in res.stdout
    # An explicit --model-url-base wins over $FER_EDGE_MODEL_DIR.
    res = run_script("--print-plan", "--model-url-base", "http://mirror.lan/m", str(video), str(tmp_path / "out"),
                     env_extra={"FER_EDGE_MODEL_DIR": str(models)})
    pull = next(s for s in plan_lines(res.stdout, "step 5 as pi") if "models pull" in s)
    assert pull.endswith("--url-base http://mirror.lan/m") and "mirror/" not in res.stdout
    # Neither: the official download, as on a Pi with internet.
    res = run_script("--print-plan", str(video), str(tmp_path / "out"))
    pull = next(s for s in plan_lines(res.stdout, "step 5 as pi") if "models pull" in s)
    assert pull == "/opt/fer-edge/venv/bin/fer-edge models pull --dest /opt/fer-edge/models"


@pytest.mark.parametrize("pi, qemu_cpu, core", [("4", "cortex-a72", "Cortex-A72"), ("5", "cortex-a76", "Cortex-A76")])
def test_plan_emulates_the_chosen_pis_core(pi, qemu_cpu, core, tmp_path, video):
    res = run_script("--print-plan", "--pi", pi, str(video), str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert f"cpu: {core} as on a Raspberry Pi {pi} Model B (QEMU_CPU={qemu_cpu}," in res.stdout


def test_cache_defaults_outside_the_repository_and_can_be_chosen(tmp_path, video):
    res = run_script("--print-plan", str(video), str(tmp_path / "out"), env_extra={"FER_EDGE_PI_CACHE": str(tmp_path / "c")})
    assert f"root: {tmp_path / 'c'}/bookworm-arm64 " in res.stdout
    res = run_script("--print-plan", "--cache", str(tmp_path / "c2"), str(video), str(tmp_path / "out"))
    assert f"root: {tmp_path / 'c2'}/bookworm-arm64 " in res.stdout and "build " in res.stdout
    res = run_script("--print-plan", str(video), str(tmp_path / "out"))
    root = re.search(r"^root: (\S+)", res.stdout, re.M).group(1)
    assert not Path(root).resolve().is_relative_to(REPO)


BAD_ARGS = {
    "no arguments": ([], "expected VIDEO and OUTDIR, got 0"),
    "one argument": (["{video}"], "expected VIDEO and OUTDIR, got 1"),
    "three arguments": (["{video}", "{out}", "extra"], "got 3"),
    "missing video": (["{tmp}/nope.mp4", "{out}"], "video not found"),
    "unknown option": (["--turbo", "{video}", "{out}"], "unknown option --turbo"),
    "option without value": (["{video}", "{out}", "--cache"], "--cache needs a value"),
    "both detector sources": (["--models-dir", "{tmp}", "--model-url-base", "http://x", "{video}", "{out}"],
                              "not both"),
    "models dir without the file": (["--models-dir", "{tmp}", "{video}", "{out}"], f"has no {DETECTOR_FILE}"),
    "bad min face frames": (["--min-face-frames", "many", "{video}", "{out}"], "whole number"),
    "cache inside the repository": (["--cache", str(REPO / "cache"), "{video}", "{out}"], "outside the repository"),
    "unknown pi": (["--pi", "3", "{video}", "{out}"], "--pi expects 4 or 5"),
}


@pytest.mark.parametrize("case", list(BAD_ARGS))
def test_bad_arguments_exit_2_with_a_message(case, tmp_path, video):
    args, words = BAD_ARGS[case]
    args = [a.format(video=video, out=tmp_path / "out", tmp=tmp_path) for a in args]
    res = run_script("--print-plan", *args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert words in res.stderr and "error:" in res.stderr
    assert not (tmp_path / "out").exists()  # nothing was made


def test_help_lists_every_option():
    res = run_script("--help")
    assert res.returncode == 0
    for opt in ("--cache", "--models-dir", "--model-url-base", "--mirror", "--min-face-frames", "--pi", "--rebuild",
                "--print-plan", "VIDEO OUTDIR"):
        assert opt in res.stdout


def test_the_real_run_refuses_a_non_root_user():
    with tempfile.TemporaryDirectory(prefix="fer-edge-pi-") as tmp:  # pytest's tmp_path is root-only
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        video = tmp_path / "clip.mp4"
        video.write_bytes(b"\x00" * 16)
        video.chmod(0o644)
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root and util-linux's setpriv is missing: cannot drop to a plain user")
            cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(SCRIPT)]
        else:
            cmd = ["bash", str(SCRIPT)]
        res = subprocess.run([*cmd, str(video), str(tmp_path / "out")], capture_output=True, text=True, timeout=60,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)})
        assert res.returncode == 2, res.stdout + res.stderr
        assert "must run as root" in res.stderr and "--print-plan" in res.stderr
        assert not (tmp_path / "out").exists()
