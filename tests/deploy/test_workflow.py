"""The CI example runs: its own `run:` steps, parsed from the YAML and run in order in the wheel's
venv, deploy a repository made by `mailorama init` to the rig. `${{ secrets.X }}` become the
rig's SSH key and known_hosts; actions/checkout is a copy of the repository, setup-python the
venv. An empty known_hosts, or one without the host's key, deploys nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mail import arrived, message, send
from project import rig

pytestmark = pytest.mark.deploy
REPO = Path(__file__).resolve().parents[2]
NAME = "mor-test-workflow"
PORTS = {"smtp": 11525, "submission": 11587, "submissions": 11465, "imap": 11143, "imaps": 11993,
         "managesieve": 11190}
PASSWORD = "workflow-deploy-pw"
SIMULATED = {"actions/checkout", "actions/setup-python"}     # the copy and the venv stand in
SECRET = re.compile(r"\$\{\{\s*secrets\.([A-Z0-9_]+)\s*\}\}")


def strip_color(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def expand(text: str, secrets: dict[str, str]) -> str:
    out = SECRET.sub(lambda m: secrets[m[1]], text)
    assert "${{" not in out, f"an expression this test does not know: {text}"
    return out


def run_steps(workflow: dict, checkout: Path, installed, secrets: dict[str, str]):
    """Run each `run:` step in order, as GitHub does (bash -e, the step's env); yield
    (name, result) and stop after the first that fails."""
    job, = workflow["jobs"].values()
    assert "env" not in workflow and "env" not in job and "defaults" not in job
    home = checkout.parent / "home"
    home.mkdir(exist_ok=True)
    for step in job["steps"]:
        if "uses" in step:
            assert step["uses"].split("@")[0] in SIMULATED, step
            continue
        env = {k: expand(str(v), secrets) for k, v in step.get("env", {}).items()}
        # pip finds only the wheel: the install step may not fetch anything else
        env.update(HOME=str(home), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(installed.wheel.parent))
        result = subprocess.run(["bash", "-e", "-c", expand(step["run"], secrets)], cwd=checkout,
                                env=installed.env(**env), capture_output=True, text=True,
                                timeout=900, stdin=subprocess.DEVNULL)
        yield step.get("name", step["run"]), result
        if result.returncode:
            return


@pytest.fixture
def checkout(installed, tmp_path):
    """The repository `mailorama init` makes, aimed at the rig, checked out as CI would."""
    def cleanup():
        subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
        Path(f"/etc/cron.d/{NAME}").unlink(missing_ok=True)

    cleanup()
    repo = installed.init(tmp_path, NAME, PORTS, PASSWORD, ssh_key=False)
    yield Path(shutil.copytree(repo, tmp_path / "checkout"))
    cleanup()


@pytest.fixture
def workflow(checkout) -> dict:
    text = (checkout / ".github/workflows/deploy.yml").read_text()
    assert text == (REPO / "examples/deploy-workflow.yml").read_text()
    return yaml.safe_load(text)


def secrets(known_hosts: str | None = None) -> dict[str, str]:
    env = rig()
    return {"DEPLOY_SSH_KEY": Path(env["MAILORAMA_RIG_SSH_KEY"]).read_text(),
            "MAIL_KNOWN_HOSTS": Path(env["MAILORAMA_RIG_SSH_KNOWN_HOSTS"]).read_text()
            if known_hosts is None else known_hosts}


def test_the_workflow_steps_deploy(workflow, checkout, installed):
    ran = {}
    for name, result in run_steps(workflow, checkout, installed, secrets()):
        assert result.returncode == 0, f"step {name!r}:\n{result.stdout}\n{result.stderr[-4000:]}"
        ran[name] = result
        if name == "what would change":
            assert "Detected changes" in result.stderr
            assert "Skipping change detection" not in result.stderr
            assert not (checkout.parent / "opt").exists()         # --dry touched nothing
    assert list(ran) == ["install Mail-o-Rama", "check the mail files", "SSH key and known hosts",
                         "what would change", "deploy"]
    assert "Requirement already satisfied: mail-o-rama==" in ran["install Mail-o-Rama"].stdout
    assert "warning" not in ran["check the mail files"].stderr
    send(PORTS["smtp"], message("bob@rooney.example", "me@example.org", "from-ci"))
    assert arrived(PORTS["imap"], "me", PASSWORD, "from-ci")

    # the next push adds an address: the dry step shows the line, the deploy makes it live
    with (checkout / "mail/virtuals").open("a") as f:
        f.write("new@example.org me\n")
    ran = dict(run_steps(workflow, checkout, installed, secrets()))
    assert all(r.returncode == 0 for r in ran.values()), \
        {n: r.stderr[-2000:] for n, r in ran.items()}
    dry = ran["what would change"]
    assert re.search(r"^\s*\+\s*new@example.org\s+me$", strip_color(dry.stdout + dry.stderr), re.M), \
        dry.stderr[-3000:]
    send(PORTS["smtp"], message("bob@rooney.example", "new@example.org", "to-new"))
    assert arrived(PORTS["imap"], "me", PASSWORD, "to-new")


@pytest.mark.parametrize("known_hosts", ["", " \n\n"])
def test_empty_known_hosts_refuses_to_run(workflow, checkout, installed, known_hosts):
    ran = list(run_steps(workflow, checkout, installed, secrets(known_hosts)))
    name, result = ran[-1]
    assert name == "SSH key and known hosts" and result.returncode != 0
    assert "::error::set the secrets DEPLOY_SSH_KEY and MAIL_KNOWN_HOSTS" in result.stderr
    assert not (checkout.parent / "home" / ".ssh").exists()


def test_a_host_key_not_in_known_hosts_refuses_to_connect(workflow, checkout, installed):
    key = Path(rig()["MAILORAMA_RIG_SSH_KNOWN_HOSTS"]).read_text().split(None, 1)[1]
    ran = list(run_steps(workflow, checkout, installed, secrets(f"other.example {key}")))
    name, result = ran[-1]
    assert name == "what would change" and result.returncode != 0
    port = rig()["MAILORAMA_RIG_SSH_PORT"]
    assert f"No host key for [127.0.0.1]:{port} found in known_hosts" in result.stderr, \
        result.stderr[-3000:]
    assert not (checkout.parent / "opt").exists()
