#!/usr/bin/env bash
# Creates (or completes) the Python venv of the beat corpus: music21, pretty_midi, mir_eval,
# librosa, and the reference trackers aubio and madmom, built from PyPI sources with the fixes
# they need on Python 3.11 + numpy 2. Idempotent: each step runs only when its import fails.
# Usage: setup-venv.sh VENV_DIR
set -euo pipefail
venv=${1:?usage: setup-venv.sh VENV_DIR}
here=$(cd "$(dirname "$0")" && pwd)
py=$venv/bin/python
pip() { nice -n 10 "$venv/bin/pip" --disable-pip-version-check "$@"; }

if [ ! -x "$py" ]; then
    python3 -m venv "$venv"
fi
if ! "$py" -c 'import music21, pretty_midi, mir_eval, librosa, soundfile, mido' 2>/dev/null; then
    echo "== venv: installing music21, pretty_midi, mir_eval, librosa"
    pip install --quiet 'numpy>=1.26' scipy 'librosa>=0.11,<0.12' 'mir_eval>=0.8' 'pretty_midi>=0.2.10' \
        'music21>=9' soundfile mido
fi

scratch=$(mktemp -d /tmp/beatcorpus-venv.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# aubio 0.4.9 (the last release) does not build against FFmpeg 5's libavcodec (AVStream.codec is
# gone), which this machine has for the compositor. Its Python API needs no file I/O from aubio
# (score.py feeds it samples), so hide libav* from pkg-config and build it without.
if ! "$py" -c 'import aubio' 2>/dev/null; then
    echo "== venv: building aubio without libav"
    mkdir -p "$scratch/bin"
    cat >"$scratch/bin/pkg-config" <<'EOF'
#!/bin/sh
for a in "$@"; do case "$a" in libav*|libsw*) exit 1;; esac; done
exec /usr/bin/pkg-config "$@"
EOF
    chmod +x "$scratch/bin/pkg-config"
    PATH="$scratch/bin:$PATH" pip install --quiet --no-cache-dir 'aubio==0.4.9' \
        || echo "!! aubio did not build; score.py will skip it"
fi

# madmom 0.16.1 (the last release, 2018) predates Python 3.10 and numpy 1.24/2: regenerate its C
# with Cython 0.29, and patch collections.MutableSequence, np.float/np.int/..., the removed
# scipy.ndimage.filters, and one ragged np.asarray in the downbeat tracker.
if ! "$py" -c 'import madmom' 2>/dev/null; then
    echo "== venv: building madmom 0.16.1 with patches"
    (
        set -e
        pip install --quiet 'cython<3' setuptools wheel
        pip download --quiet --no-deps --no-build-isolation 'madmom==0.16.1' -d "$scratch"
        cd "$scratch"
        tar xzf madmom-0.16.1.tar.gz
        cd madmom-0.16.1
        find madmom -name '*.c' -delete
        grep -rlE 'collections|np\.(float|int|bool|complex|object)\b|scipy\.ndimage\.filters' \
            --include='*.py' --include='*.pyx' madmom | xargs perl -pi -e '
                s/from collections import MutableSequence/from collections.abc import MutableSequence/;
                s/\bnp\.(float|int|bool|complex|object)\b(?![_0-9])/$1/g;
                s/scipy\.ndimage\.filters/scipy.ndimage/g;'
        perl -pi -e 's/best = np\.argmax\(np\.asarray\(results\)\[:, 1\]\)/best = np.argmax([r[1] for r in results])/' \
            madmom/features/downbeats.py
        pip install --quiet --no-build-isolation --no-deps .
    ) || echo "!! madmom did not build; score.py will skip it"
fi
