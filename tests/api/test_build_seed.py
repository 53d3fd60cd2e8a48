"""The seed's third way of installing an image, `docker build -t dia_ch3/dockerfile:latest
ch3_dockerfile`, with a local directory of that repository's shape (a Dockerfile FROM
busybox:latest, a README), and its intermediate images in `docker images -a`."""

import re

from .build_helpers import write_context

REF = "dia_ch3/dockerfile:latest"


def test_seed_build_of_ch3_dockerfile(cli, tmp_path):
    ctx = write_context(tmp_path / "ch3_dockerfile", {
        "Dockerfile": ("FROM busybox:latest\n"
                       "MAINTAINER dockerinaction@allingeek.com\n"
                       "RUN touch /mychange\n"
                       'CMD ["sh", "-c", "ls /mychange && echo built from ch3_dockerfile"]\n'),
        "README.md": "# ch3_dockerfile\n\nAn example Dockerfile.\n",
    })
    try:
        r = cli("build", "-t", REF, str(ctx), timeout=180)
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        assert "Step 4/4 : CMD" in r.stdout
        assert f"Successfully tagged {REF}" in r.stdout
        listed = cli("images", "--format", "{{.Repository}}:{{.Tag}}", "dia_ch3/dockerfile")
        assert listed.stdout.split() == [REF]
        out = cli("run", "--rm", REF)
        assert out.stdout == "/mychange\nbuilt from ch3_dockerfile\n"
        # every step made an image: the untagged ones are listed only with -a
        steps = re.findall(r" ---> ([0-9a-f]{12})\n", r.stdout)
        everything = cli("images", "-a", "-q", "--no-trunc").stdout
        hidden = cli("images", "-q", "--no-trunc").stdout
        intermediate = [s for s in steps[1:-1] if f"sha256:{s}" not in hidden]
        assert intermediate and all(f"sha256:{s}" in everything for s in intermediate)
        history = cli("history", "--format", "{{.CreatedBy}}", REF).stdout
        assert "touch /mychange" in history
    finally:
        cli("rmi", "-f", REF)
