#!/usr/bin/env bash
# Checks a Compose file without a Docker engine:
#  (a) `docker-compose config` accepts it (the validation of `config -q`;
#      Debian's docker-compose 1.29, installed with apt-get when missing);
#  (b) every `tweetlambda COMMAND [SUBCOMMAND] --flag` it runs (in `command`,
#      `entrypoint` and health checks, also inside `sh -c` strings) exists,
#      according to the help of the binary $TL (default
#      $CARGO_TARGET_DIR/debug/tweetlambda). Each missing command or flag is
#      printed; the exit status is then 1.
#
#   scripts/check-compose.sh [FILE]      # default: docker-compose.yml
#   scripts/check-compose.sh --self-test # breaks a copy of FILE twice (a
#                                        # Compose error, a misspelled flag)
#                                        # and asserts that each is caught
#
# CHECK_COMPOSE_ALLOW_MISSING="index kibana": top-level commands that the
# binary may not have yet; they are reported as skipped, not as missing (a
# command that exists is checked in full, listed or not).
set -euo pipefail
start_dir="$PWD"
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL="${TL:-$CARGO_TARGET_DIR/debug/tweetlambda}"
ALLOW="${CHECK_COMPOSE_ALLOW_MISSING:-}"

self_test=false
if [[ "${1:-}" == "--self-test" ]]; then
  self_test=true
  shift
fi
FILE="${1:-docker-compose.yml}"
[[ -n "${1:-}" && "$FILE" != /* ]] && FILE="$start_dir/$FILE"
[[ -f "$FILE" ]] || { echo "check-compose: no file $FILE" >&2; exit 2; }
# Relative paths of the file (build context, bind mounts) resolve against
# its own directory, also for the copies of the self-test.
PROJECT_DIR="$(cd "$(dirname "$FILE")" && pwd)"

if ! command -v docker-compose >/dev/null; then
  echo "check-compose: installing docker-compose (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq docker-compose >/dev/null
fi
# docker-compose's own Python has PyYAML; any other python3 with it will do.
PY=python3
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import yaml' 2>/dev/null && PY=/usr/bin/python3

# The flag check (b): reads `docker-compose config` output on stdin.
IFS= read -r -d '' FLAG_CHECK <<'PY' || true
import os, re, shlex, subprocess, sys
import yaml

tl, allow = sys.argv[1], set(sys.argv[2].split())
config = yaml.safe_load(sys.stdin)
helps = {}


def help_of(path):
    """(subcommands, flags, ok) of `tweetlambda PATH... --help`."""
    if tuple(path) not in helps:
        out = subprocess.run([tl, *path, "--help"], capture_output=True, text=True)
        commands, flags, section = set(), set(), None
        for line in out.stdout.splitlines():
            if re.match(r"^\S.*:$", line):  # a heading: "Commands:", "Options:"
                section = line[:-1]
            elif section == "Commands":
                m = re.match(r"^\s+([a-z0-9][a-z0-9-]*)", line)
                commands.update(m.groups() if m else ())
            elif section not in (None, "Arguments"):
                # "  -n, --limit <N>", "      --brokers <BROKERS>", "  -X <KEY=VALUE>"
                m = re.match(r"^ {1,6}(-[A-Za-z0-9])?(?:, )?(--[a-z0-9][a-z0-9-]*)?", line)
                flags.update(f for f in (m.groups() if m else ()) if f)
        helps[tuple(path)] = (commands, flags, out.returncode == 0)
    return helps[tuple(path)]


SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "then", "do", "else", "exec", "if", "while", "until", "!"}


def in_script(script):
    """The arguments of each `tweetlambda ...` in command position of a shell script."""
    for line in str(script).replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, t in enumerate(tokens):
            if os.path.basename(t) == "tweetlambda" and (i == 0 or tokens[i - 1] in SEPARATORS):
                args = []
                for a in tokens[i + 1:]:
                    if a in SEPARATORS or a in ("done", "fi"):
                        break
                    args.append(a)
                yield args


def in_argv(argv):
    """The arguments of `tweetlambda ...` run by an argv (directly or by `sh -c`)."""
    if not argv:
        return
    if os.path.basename(argv[0]) == "tweetlambda":
        yield argv[1:]
    elif os.path.basename(argv[0]) in ("sh", "bash") and "-c" in argv[1:]:
        for script in argv[argv.index("-c") + 1:argv.index("-c") + 2]:
            yield from in_script(script)


def as_list(v):
    return shlex.split(v) if isinstance(v, str) else [str(a) for a in (v or [])]


problems, skipped, checked = [], [], 0
for name, service in sorted((config.get("services") or {}).items()):
    ours = "build" in service or "tweetlambda" in str(service.get("image", ""))
    entrypoint = service.get("entrypoint")
    if entrypoint is None and ours:
        entrypoint = ["tweetlambda"]  # the Dockerfile's ENTRYPOINT
    found = list(in_argv(as_list(entrypoint) + as_list(service.get("command"))))
    test = (service.get("healthcheck") or {}).get("test") or []
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if test[:1] == ["CMD"]:
        found += in_argv(test[1:])
    elif test[:1] == ["CMD-SHELL"]:
        found += in_script(" ".join(test[1:]))
    for args in found:
        if not args:
            continue
        checked += 1
        if args[0] not in help_of([])[0]:
            if args[0] in allow:
                skipped.append(f"{name}: tweetlambda {args[0]} (not in the binary; CHECK_COMPOSE_ALLOW_MISSING)")
            else:
                problems.append(f"{name}: tweetlambda {args[0]}: no such command")
            continue
        path, rest = [args[0]], args[1:]
        while rest and rest[0] in help_of(path)[0]:
            path.append(rest.pop(0))
        subcommands, flags, ok = help_of(path)
        if rest and not rest[0].startswith("-") and subcommands - {"help"}:
            problems.append(f"{name}: tweetlambda {' '.join(path)} {rest[0]}: no such command")
            continue
        if not ok:
            problems.append(f"{name}: tweetlambda {' '.join(path)} --help failed")
            continue
        used = []
        for a in rest:
            if a == "--":
                break
            flag = a.split("=", 1)[0]
            if re.match(r"^(--[A-Za-z0-9][A-Za-z0-9-]*|-[A-Za-z])$", flag):
                used.append(flag)
                if flag not in flags:
                    problems.append(f"{name}: tweetlambda {' '.join(path)}: no flag {flag}")
        print(f"checked: {name}: tweetlambda {' '.join(path + used)}")
for s in skipped:
    print(f"skipped: {s}")
for p in problems:
    print(f"missing: {p}")
print(f"tweetlambda commands in the file: {checked}; missing: {len(problems)}; skipped: {len(skipped)}")
sys.exit(1 if problems else 0)
PY

# check FILE: both checks; prints what fails, returns non-zero if any does.
check() {
  local file="$1" config errors
  errors="$(mktemp)"
  if ! config="$(docker-compose -f "$file" --project-directory "$PROJECT_DIR" config 2>"$errors")"; then
    echo "docker-compose config: $file is not valid:"
    sed 's/^/  /' "$errors"
    rm -f "$errors"
    return 1
  fi
  rm -f "$errors"
  echo "docker-compose config: $file is valid"
  [[ -x "$TL" ]] || { echo "no tweetlambda binary at $TL (build it, or set TL)"; return 1; }
  printf '%s\n' "$config" | "$PY" -c "$FLAG_CHECK" "$TL" "$ALLOW"
}

if ! $self_test; then
  check "$FILE"
  exit
fi

# Self-test: the original passes; each broken copy fails, for its reason.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$FILE" "$tmp/original.yml"
failures=0
expect() { # expect pass|fail NAME FILE [TEXT that the output must hold]
  local want="$1" name="$2" file="$3" text="${4:-}" out rc=0
  out="$(check "$file" 2>&1)" || rc=$?
  if [[ "$want" == pass && $rc == 0 ]] || [[ "$want" == fail && $rc != 0 && "$out" == *"$text"* ]]; then
    echo "ok: $name: the check does $want"
  else
    echo "FAILED: $name: expected the check to $want (exit $rc); its output:"
    printf '%s\n' "$out" | sed 's/^/  /'
    failures=$((failures + 1))
  fi
}
# A Compose error: an option that does not exist.
awk '!done && /^[[:space:]]+depends_on:/ { sub(/depends_on:/, "depends_onn:"); done = 1 } { print }' \
  "$tmp/original.yml" >"$tmp/compose-error.yml"
# A misspelled flag of a tweetlambda command (the first --brokers outside comments).
awk '!done && !/^[[:space:]]*#/ && sub(/--brokers/, "--brokerz") { done = 1 } { print }' \
  "$tmp/original.yml" >"$tmp/misspelled-flag.yml"
cmp -s "$tmp/original.yml" "$tmp/compose-error.yml" && { echo "self-test: no depends_on to break" >&2; exit 2; }
cmp -s "$tmp/original.yml" "$tmp/misspelled-flag.yml" && { echo "self-test: no --brokers to break" >&2; exit 2; }
expect pass "the original $FILE" "$tmp/original.yml"
expect fail "a Compose error (depends_onn)" "$tmp/compose-error.yml" "depends_onn"
expect fail "a misspelled flag (--brokerz)" "$tmp/misspelled-flag.yml" "no flag --brokerz"
if ((failures)); then
  echo "check-compose self-test: $failures case(s) failed"
  exit 1
fi
echo "check-compose self-test: all 3 cases as expected"
