#!/usr/bin/python3
"""Every `testfarm SUBCOMMAND ... --flag` written in the deployment files exists.

Finds each testfarm command in docker/Dockerfile, docker/compose.yaml, deploy/k8s/*.yaml,
deploy/systemd/* (units and their environment files), docs/deploy.md and README.md, and checks
each flag given to it against `testfarm SUBCOMMAND --help` of the built binary (and the
top-level options such as --log-level). Fails naming file, line and flag.

Commands are found in:
  - text: shell lines (joined at a trailing backslash), unit files, Dockerfile lines, YAML
    comments and YAML string values (e.g. an `sh -c` script): `testfarm SUB` (also
    `/path/to/testfarm SUB`, an image `testfarm:TAG SUB`) up to the end of the command
    (`|`, `;`, `&&`, a comment, a closing backtick);
  - YAML lists: a list whose first item is a subcommand (compose `command:`, Kubernetes
    `args:`, the image's entrypoint being testfarm) or that holds `testfarm` followed by one;
  - Markdown: fenced code blocks as shell text, and inline code spans;
  - environment files of the systemd units: SERVICE.env holds options of `testfarm SERVICE`.

Usage: check_flags.py --testfarm BINARY --root SOURCE_DIR
       check_flags.py --self-test
"""

import argparse
import glob
import os
import re
import subprocess
import sys

import yaml

SUBCOMMANDS = ("run", "worker", "serve", "keygen", "status", "list", "history", "flaky")
SUB_RE = re.compile(r"(?<![\w.-])testfarm(?::[\w.-]+)?\s+(" + "|".join(SUBCOMMANDS) + r")(?![\w-])")
LONG_FLAG = re.compile(r"^(--[a-z0-9][a-z0-9-]*)(=.*)?$")
SHORT_FLAG = re.compile(r"^(-[a-zA-Z])$")
# Where a command ends on its line.
END_RE = re.compile(r"\s\|\|?\s|&&|;|`|\s#|^#")
# Option lines of CLI11's help: "  --connect tcp://...", "  -j,--jobs UINT".
HELP_OPTION = re.compile(r"^\s{2}((?:-[a-zA-Z],)*)(--[a-z0-9][a-z0-9-]*)")
HELP_SHORT = re.compile(r"-([a-zA-Z]),")

# The files to read, relative to the source root; each of REQUIRED must hold at least one
# command (so a file the extractor cannot read fails loudly instead of passing empty).
PATTERNS = ["docker/Dockerfile", "docker/*.yaml", "deploy/k8s/*.yaml", "deploy/systemd/*",
            "docs/deploy.md", "README.md"]
REQUIRED = ["docker/compose.yaml", "deploy/k8s/farm-deployment.yaml",
            "deploy/k8s/worker-deployment.yaml", "deploy/systemd/testfarm-serve.service",
            "deploy/systemd/testfarm-worker.service", "deploy/systemd/serve.env",
            "deploy/systemd/worker.env", "docs/deploy.md"]


class Use:
    """One flag given to one subcommand at file:line."""

    def __init__(self, path, line, sub, flag):
        self.path, self.line, self.sub, self.flag = path, line, sub, flag


def flags_in_tokens(tokens):
    out = []
    for token in tokens:
        token = token.strip("\"'[],")
        m = LONG_FLAG.match(token) or SHORT_FLAG.match(token)
        if m:
            out.append(m.group(1))
    return out


def commands_in_line(text):
    """(subcommand, [flags]) for each testfarm command in one logical line of shell-like text."""
    found = []
    matches = list(SUB_RE.finditer(text))
    for i, m in enumerate(matches):
        rest = text[m.end():]
        if i + 1 < len(matches):
            rest = text[m.end():matches[i + 1].start()]
        end = END_RE.search(rest)
        if end:
            rest = rest[:end.start()]
        found.append((m.group(1), flags_in_tokens(rest.split())))
    return found


def logical_lines(lines, first_line=1):
    """Joins lines ending in a backslash; yields (line number of the first, text)."""
    buf, start = "", None
    for n, line in enumerate(lines, first_line):
        if start is None:
            start = n
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        yield start, buf + line
        buf, start = "", None
    if start is not None:
        yield start, buf


def scan_text(path, lines, first_line=1):
    uses, commands = [], 0
    for n, text in logical_lines(lines, first_line):
        for sub, flags in commands_in_line(text):
            commands += 1
            uses += [Use(path, n, sub, f) for f in flags]
    return uses, commands


def scan_markdown(path, lines):
    uses, commands = [], 0
    fence, block, block_start = None, [], 0
    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence, block, block_start = "```", [], n + 1
            continue
        if fence is not None:
            if stripped.startswith("```"):
                u, c = scan_text(path, block, block_start)
                uses += u
                commands += c
                fence = None
            else:
                block.append(line)
            continue
        for span in re.findall(r"`([^`]+)`", line):
            for sub, flags in commands_in_line(span):
                commands += 1
                uses += [Use(path, n, sub, f) for f in flags]
    return uses, commands


def scalar_lines(node):
    """The 1-based line of each line of a scalar's value."""
    first = node.start_mark.line + 1
    if node.style in ("|", ">"):
        first += 1  # the content starts under the indicator
    return first


def scan_yaml(path, text):
    uses, commands = [], 0
    # Comments are not in the node graph: read them as text.
    comment_lines = [line if line.lstrip().startswith("#") else "" for line in text.splitlines()]
    u, c = scan_text(path, comment_lines)
    uses += u
    commands += c
    seen = set()

    def walk(node, key=None):
        nonlocal uses, commands
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                walk(k)
                walk(v, k.value if isinstance(k, yaml.ScalarNode) else None)
        elif isinstance(node, yaml.SequenceNode):
            items = node.value
            if items and all(isinstance(i, yaml.ScalarNode) for i in items):
                values = [i.value for i in items]
                start = None
                if key in ("command", "args") and values[0] in SUBCOMMANDS:
                    start = 0
                for j, v in enumerate(values[:-1]):
                    if (v == "testfarm" or v.endswith("/testfarm")) and values[j + 1] in SUBCOMMANDS:
                        start = j + 1
                        break
                if start is not None:
                    commands += 1
                    sub = values[start]
                    for item in items[start + 1:]:
                        for f in flags_in_tokens([item.value]):
                            uses.append(Use(path, item.start_mark.line + 1, sub, f))
            for i in items:
                walk(i)
        elif isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
            value = node.value
            if key in ("command", "args") and value.split(" ", 1)[0] in SUBCOMMANDS:
                value = "testfarm " + value
            u, c = scan_text(path, value.splitlines(), scalar_lines(node))
            uses += u
            commands += c

    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if document is not None:
            walk(document)
    return uses, commands


def scan_env_file(path, lines, sub):
    """KEY=VALUE lines of a unit's environment file: its flags are `testfarm SUB`'s."""
    uses, commands = scan_text(path, [line if line.lstrip().startswith("#") else "" for line in lines])
    for n, line in enumerate(lines, 1):
        if line.lstrip().startswith("#") or "=" not in line:
            continue
        value = line.split("=", 1)[1]
        flags = flags_in_tokens(value.split())
        if flags:
            commands += 1
            uses += [Use(path, n, sub, f) for f in flags]
    return uses, commands


def scan_file(root, rel):
    path = os.path.join(root, rel)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines()
    name = os.path.basename(rel)
    if rel.endswith((".yaml", ".yml")):
        return scan_yaml(rel, text)
    if rel.endswith(".md"):
        return scan_markdown(rel, lines)
    if rel.endswith(".env"):
        sub = name[:-len(".env")]
        if sub not in SUBCOMMANDS:
            raise SystemExit(f"{rel}: an environment file must be named SUBCOMMAND.env")
        return scan_env_file(rel, lines, sub)
    return scan_text(rel, lines)


def parse_help(text):
    flags = set()
    for line in text.splitlines():
        m = HELP_OPTION.match(line)
        if m:
            flags.add(m.group(2))
            flags.update("-" + s for s in HELP_SHORT.findall(m.group(1)))
    return flags


def help_of(binary):
    def run(args):
        r = subprocess.run([binary] + args, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise SystemExit(f"`{' '.join([binary] + args)}` exited {r.returncode}: {r.stderr}")
        return r.stdout

    top = parse_help(run(["--help"]))
    return {sub: parse_help(run([sub, "--help"])) | top for sub in SUBCOMMANDS}


def check(uses, known, say=print):
    bad = [u for u in uses if u.flag not in known[u.sub]]
    for u in bad:
        say(f"{u.path}:{u.line}: `testfarm {u.sub}` has no flag {u.flag} "
              f"(not in `testfarm {u.sub} --help`)")
    return bad


def self_test():
    """The extractor on small samples of each form, against a fake help."""
    known = {sub: {"--help", "--log-level"} for sub in SUBCOMMANDS}
    known["worker"] |= {"--connect", "--slots", "--key"}
    known["serve"] |= {"--listen", "--key"}
    known["run"] |= {"--farm", "-j", "--jobs"}
    failures = []

    def expect(what, uses, flags):
        got = sorted(f"{u.line}:{u.sub}:{u.flag}" for u in uses)
        if got != sorted(flags):
            failures.append(f"{what}: got {got}, want {sorted(flags)}")

    u, _ = scan_text("t", ["x=1", "/usr/local/bin/testfarm worker --connect tcp://h:1 \\",
                           "    --slots 2 --bogus && testfarm serve --listen=tcp://x:1 # --no"])
    expect("continuation", u, ["2:worker:--connect", "2:worker:--slots", "2:worker:--bogus",
                               "2:serve:--listen"])
    u, _ = scan_text("t", ["docker run --rm -v k:/k testfarm:latest run -j 4 --farm x | tee log"])
    expect("image tag", u, ["1:run:-j", "1:run:--farm"])
    u, _ = scan_text("t", ["testfarm-worker.service runs `testfarm worker`, see --slots"])
    expect("prose after a code span", u, [])
    u, _ = scan_yaml("t.yaml", "a:\n  command: [serve, --listen, x,\n    --nope, '1']\n"
                     "  args:\n    - worker\n    - --slots\n    - $(N)\n"
                     "  test: [CMD, testfarm, run, --farm, x]\n"
                     "  script: |\n    echo\n    testfarm worker --key k --zzz\n"
                     "# testfarm serve --commented\n")
    expect("yaml", u, ["2:serve:--listen", "3:serve:--nope", "6:worker:--slots",
                       "8:run:--farm", "11:worker:--key", "11:worker:--zzz",
                       "12:serve:--commented"])
    u, _ = scan_markdown("t.md", ["Run `testfarm run --farm X` or `testfarm serve --foo`.",
                                  "```sh", "testfarm worker \\", "  --connect x --bar", "```",
                                  "prose --not-a-flag testfarm run"])
    expect("markdown", u, ["1:run:--farm", "1:serve:--foo", "3:worker:--connect",
                           "3:worker:--bar"])
    u, _ = scan_env_file("worker.env", ["# `testfarm worker` options", "OPTS=--slots 2 --qq"],
                         "worker")
    expect("env file", u, ["2:worker:--slots", "2:worker:--qq"])
    bad = [f"{b.line}:{b.flag}" for b in check(scan_text("t", ["testfarm run -j 2 --jobs 3 -q"])[0],
                                               known, say=lambda _: None)]
    if bad != ["1:-q"]:
        failures.append(f"check: got {bad}, want ['1:-q']")
    helped = parse_help("Options:\n  -h,--help   Print\n  --connect tcp://HOST REQUIRED\n"
                        "  -j,--jobs UINT\n      --not-an-option in a description\n")
    if helped != {"-h", "--help", "--connect", "-j", "--jobs"}:
        failures.append(f"parse_help: got {sorted(helped)}")
    for f in failures:
        print("self-test:", f)
    print("self-test:", "FAILED" if failures else "passed")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--testfarm")
    parser.add_argument("--root")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.testfarm or not args.root:
        parser.error("--testfarm and --root are required")
    known = help_of(args.testfarm)
    files = sorted({os.path.relpath(p, args.root)
                    for pattern in PATTERNS for p in glob.glob(os.path.join(args.root, pattern))
                    if os.path.isfile(p)})
    all_uses, failed = [], False
    for rel in files:
        uses, commands = scan_file(args.root, rel)
        print(f"{rel}: {commands} testfarm commands, {len(uses)} flags")
        if commands == 0 and rel in REQUIRED:
            print(f"{rel}: no testfarm command found (the extractor cannot read this file?)")
            failed = True
        all_uses += uses
    for rel in REQUIRED:
        if rel not in files:
            print(f"{rel}: missing")
            failed = True
    bad = check(all_uses, known)
    print(f"{len(all_uses)} flags checked in {len(files)} files against {args.testfarm}: "
          f"{len(bad)} unknown")
    return 1 if bad or failed else 0


if __name__ == "__main__":
    sys.exit(main())
