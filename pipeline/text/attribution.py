"""Who says each line: screenplay alignment, SDH name cues, diarization clusters, voiceprints and user labels.

Script alignment (:func:`align_script`) is an order-preserving dynamic programme over a subtitle × script-line
similarity matrix (rapidfuzz partial ratio on normalised text). A subtitle cue may match part of a script line
and consecutive cues may share one script line (subtitles split long speeches); script lines may be skipped
(cut scenes) at a small cost per line; cues may stay unmatched (ad-libs, songs). The matrix is filled sparsely:
first pairs sharing a distinctive word, then every pair in a window around the first alignment.

Precedence in :func:`attribute`, strongest first — every signal is a weighted vote for a name, cluster-level
signals for the same name do not add up (the strongest one counts), line-level ones do:

1. **user label** on the line: always wins (confidence 1.0).
2. **user label propagated** to the line's diarization cluster (weight 3.0): beats everything below.
3. **SDH name cue** on the line ("JOHN: …", weight 1.6) and a **strong script match** (weight 1.6 × match
   quality; quality 1 = long line matched near-verbatim).
4. **voiceprint** match naming the line's cluster (weight 1.3).
5. **cluster majority** ("voice"): the names the other lines of the cluster got from script/SDH, weight up to 1.2
   when ≥ 90 % of ≥ 4 named lines agree. It names unnamed lines and flips a *weak* script match (short line,
   loose match) that disagrees — a flipped line gets a lower confidence.
6. a weak script match on its own; otherwise no name (source "none").

After the vote, :func:`recheck_by_own_voice` checks each line named only by its cluster's majority against the
voices of the characters named around it (a cluster may hold two people: an ad-lib of the other one).

A script whose overall alignment score is below ``min_script_score`` is not used at all and a warning says so
(``check_script_match`` raises instead). ``AttributionResult.overlaps`` holds lines that are not one clean voice:
lines overlapping diarization turns of two or more clusters (the second for ≥ 0.3 s and ≥ 25 % of the line),
SDH group cues ("ALL:"), and dash cues with two speakers. Line indices are positions in the ``lines`` list.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import BadInputError
from pipeline.types import Attribution, Diarization, Line, Script
from pipeline.vectors import unit

DEFAULT_MIN_SCRIPT_SCORE = 0.25  # wrong movies score ≈0.0–0.05; a right one 0.4 (noisy ASR) to 1.0

W_USER_CLUSTER = 3.0
W_SDH = 1.6
W_SCRIPT = 1.6
W_VOICEPRINT = 1.3
W_VOICE = 1.2

ANCHORED_SCORE = 0.9  # a short line matched at least this well between strong neighbours ...
ANCHORED_QUALITY = 0.9  # ... is trusted this much (a script vote beating a cluster majority)
_MATCH_MIN = 0.5  # a subtitle/script pair must score above this to be worth aligning
_SKIP_COST = 0.02  # per skipped script line
_CONTINUE_BONUS = 0.03  # for a cue going on with the script line of a cue that ended mid-sentence (> _SKIP_COST)
_SENTENCE_END = re.compile(r"[.!?…♪\"”»]\s*$")
_FULL_MATRIX = 40_000  # below this many pairs, compare every subtitle line with every script line
_GROUP_NAMES = {"ALL", "BOTH", "TOGETHER", "EVERYONE", "EVERYBODY", "CROWD", "VOICES", "SEVERAL", "OTHERS", "GROUP"}


# ---------------------------------------------------------------------------------------------------- text


def normalise_text(text: str) -> str:
    """Lower-case words without accents, punctuation, SDH [tags], (parentheticals), <i> tags or 'NAME:' cues."""
    t = re.sub(r"<[^>]+>|\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|♪", " ", text or "")
    t = re.sub(r"(^|\n)\s*-?\s*[A-Z][A-Z0-9 .'\-]{1,30}:\s", r"\1 ", t)  # SDH speaker cue
    t = unicodedata.normalize("NFKD", t.replace("’", "'")).lower()
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    return " ".join(w.strip("'_") for w in re.findall(r"\w+(?:'\w+)*", t) if w.strip("'_"))


def name_key(name: str | None) -> str | None:
    """Canonical form of a character name: 'John (V.O.)', 'JOHN:' and 'john' all give 'JOHN'."""
    if not name:
        return None
    n = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", name)
    n = re.sub(r"\b(CONT'?D|V\.?O\.?|O\.?S\.?|O\.?C\.?)\b", " ", n, flags=re.I)
    n = unicodedata.normalize("NFKC", n).strip(" :-.\t\n").upper()
    n = re.sub(r"\s+", " ", n)
    return n or None


def is_group_name(name: str | None) -> bool:
    k = name_key(name)
    return bool(k) and (k in _GROUP_NAMES or " AND " in f" {k} " or "&" in k)


def two_speaker_cue(text: str) -> bool:
    """Whether a cue holds two speakers' rows ("- Hi.\n- Hello.")."""
    return sum(1 for row in (text or "").splitlines() if re.match(r"\s*(<[^>]+>)*\s*[-–]\s*\S", row)) >= 2


# ------------------------------------------------------------------------------------------ script alignment


@dataclass
class ScriptAlignment:
    """Per subtitle line: matched script line index (or None) and its similarity 0..1; plus an overall score."""

    matches: list[int | None]
    scores: list[float]
    score: float  # length-weighted mean over subtitle lines of match quality (0 unmatched/loose, 1 verbatim)
    script_coverage: float = 0.0  # share of script lines matched by at least one cue
    quality: list[float] = field(default_factory=list)  # per line 0..1: how much to trust the match

    @property
    def n_matched(self) -> int:
        return sum(m is not None for m in self.matches)


def _sim(a: str, b: str) -> float:
    """How well subtitle text ``a`` is contained in script text ``b`` (0..1): half character-level partial ratio,
    half in-order word overlap (unrelated English lines share stopwords and letters, rarely word sequences)."""
    from rapidfuzz import fuzz
    from rapidfuzz.distance import LCSseq

    if not a or not b:
        return 0.0
    if len(a) <= len(b):
        chars = fuzz.partial_ratio(a, b) / 100.0
    else:
        chars = fuzz.partial_ratio(b, a) / 100.0 * (len(b) / len(a)) ** 0.5
    wa = a.split()
    words = LCSseq.similarity(wa, b.split()) / len(wa)
    return 0.5 * chars + 0.5 * words


def _weight(a: str) -> float:
    return min(1.0, len(a) / 25.0) ** 0.5


def align_script(lines: list[Line], script: Script) -> ScriptAlignment:
    """Order-preserving fuzzy alignment of subtitle/transcript lines to screenplay lines (module docstring)."""
    subs = [normalise_text(ln.text) for ln in lines]
    scr = [normalise_text(sl.text) for sl in script.lines]
    n, m = len(subs), len(scr)
    if n == 0 or m == 0:
        return ScriptAlignment([None] * n, [0.0] * n, 0.0, 0.0, [0.0] * n)
    sim = np.zeros((n, m), dtype=np.float32)
    done = np.zeros((n, m), dtype=bool)

    def fill(i: int, js) -> None:
        for j in js:
            if not done[i, j]:
                done[i, j] = True
                sim[i, j] = _sim(subs[i], scr[j])

    if n * m <= _FULL_MATRIX:
        for i in range(n):
            fill(i, range(m))
    else:  # pass 1: only pairs sharing a word that is rare on both sides
        sub_tok = [set(s.split()) for s in subs]
        scr_tok = [set(s.split()) for s in scr]
        df_sub: dict[str, int] = {}
        df_scr: dict[str, int] = {}
        for toks, df in [(t, df_sub) for t in sub_tok] + [(t, df_scr) for t in scr_tok]:
            for t in toks:
                df[t] = df.get(t, 0) + 1
        lim_sub, lim_scr = max(3, int(0.01 * n)), max(3, int(0.01 * m))
        where: dict[str, list[int]] = {}
        for j, toks in enumerate(scr_tok):
            for t in toks:
                if len(t) >= 3 and df_scr[t] <= lim_scr and df_sub.get(t, 0) <= lim_sub:
                    where.setdefault(t, []).append(j)
        for i, toks in enumerate(sub_tok):
            cand: set[int] = set()
            for t in toks:
                cand.update(where.get(t, ()))
            fill(i, sorted(cand))
    open_ = [bool(ln.text.strip()) and not _SENTENCE_END.search(ln.text.strip()) for ln in lines]
    matches = _dp(sim, subs, open_)

    # pass 2: every pair in a window around the first path
    anchors = [(i, j) for i, j in enumerate(matches) if j is not None]
    if anchors:
        ai = np.array([a[0] for a in anchors])
        aj = np.array([a[1] for a in anchors])
        for i in range(n):
            k_prev = int(np.searchsorted(ai, i, side="left")) - 1  # last anchor before i
            k_next = int(np.searchsorted(ai, i, side="right"))  # first anchor after i
            lo = int(aj[k_prev]) if k_prev >= 0 else int(aj[0]) - 10
            hi = int(aj[k_next]) if k_next < len(ai) else int(aj[-1]) + 10
            lo, hi = max(0, lo - 2), min(m - 1, hi + 2)
            if hi - lo > 60:
                fill(i, range(lo, lo + 25))
                fill(i, range(hi - 24, hi + 1))
            else:
                fill(i, range(lo, hi + 1))
        matches = _dp(sim, subs, open_)

    matches = _resumed(matches, subs, scr, open_)
    for i, j in enumerate(matches):
        if j is not None and not done[i, j]:
            fill(i, [j])
    scores = [float(sim[i, j]) if j is not None else 0.0 for i, j in enumerate(matches)]
    w = np.array([_weight(s) for s in subs])
    quality = [_quality(scores[i], subs[i]) if matches[i] is not None else 0.0 for i in range(n)]
    quality = _anchored(matches, scores, quality)
    total = float(w[[bool(s) for s in subs]].sum())
    good = [float(np.clip((scores[i] - _MATCH_MIN) / (0.95 - _MATCH_MIN), 0.0, 1.0)) for i in range(n)]
    score = float(sum(w[i] * good[i] for i in range(n)) / total) if total else 0.0
    coverage = len({j for j in matches if j is not None}) / m
    return ScriptAlignment(matches, scores, score, coverage, quality)


RESUME_WORDS = 6  # a fragment this short going on with a line cut by an interruption takes that line back
RESUME_HELD = 0.8  # ... when this share of its words continues the interrupted line's screenplay text


def _resumed(matches: list[int | None], subs: list[str], scr: list[str], open_: list[bool]) -> list[int | None]:
    """A short cue after an interruption that goes on with the cue before it ("Why would Jonah lie to us about the
    church" / the interrupter's cue / "on Water Street?") is matched back to the interrupted line's screenplay line:
    the order-keeping path cannot go back, and the fragment's few words also sit in a later screenplay line."""
    from rapidfuzz.distance import LCSseq

    out = list(matches)
    for i in range(2, len(out)):
        a = out[i - 2]
        frag = subs[i].split()
        if (a is None or not open_[i - 2] or out[i - 1] is None or out[i - 1] == a or out[i] == a
                or not 0 < len(frag) <= RESUME_WORDS):
            continue
        line = scr[a].split()
        alone = LCSseq.similarity(subs[i - 2].split(), line)
        joint = LCSseq.similarity(subs[i - 2].split() + frag, line)
        if joint - alone >= RESUME_HELD * len(frag):
            out[i] = a
    return out


def _anchored(matches: list[int | None], scores: list[float], quality: list[float]) -> list[float]:
    """A short line matched near-verbatim between two strong matches of the script lines just before and after
    its own ("What?" between the line it answers and the next one) is as sure as a long line: the order of the
    lines, not its few words, places it."""
    out = list(quality)
    for i, j in enumerate(matches):
        if j is None or scores[i] < ANCHORED_SCORE or quality[i] >= ANCHORED_QUALITY:
            continue
        before = next((k for k in range(i - 1, max(-1, i - 3), -1) if matches[k] is not None), None)
        after = next((k for k in range(i + 1, min(len(matches), i + 3)) if matches[k] is not None), None)
        if (before is not None and after is not None and quality[before] >= 0.5 and quality[after] >= 0.5
                and 1 <= j - matches[before] <= 2 and 1 <= matches[after] - j <= 2):
            out[i] = ANCHORED_QUALITY
    return out


def _quality(s: float, text: str) -> float:
    return float(np.clip((s - _MATCH_MIN) / (0.95 - _MATCH_MIN), 0.0, 1.0) * min(1.0, 0.4 + len(text) / 30.0))


def _dp(sim: np.ndarray, subs: list[str], open_: list[bool] | None = None) -> list[int | None]:
    """Best monotone path. Column 0 = nothing matched yet; column c = script line c-1. A cue after one that does
    not end a sentence (``open_``) is rewarded a little for going on with the same script line: a fragment like
    "on Water Street?" otherwise matches a later line holding the same words just as well."""
    n, m = sim.shape
    neg = -1e9
    cols = np.arange(m + 1)
    M_prev = np.full(m + 1, neg)
    U_prev = np.full(m + 1, neg)
    U_prev[0] = 0.0
    from_m = np.zeros((n, m + 1), dtype=bool)  # P[c] at row i came from M (else U)
    prev_col = np.zeros((n, m + 1), dtype=np.int32)  # predecessor column of M[i, c]
    for i in range(n):
        P = np.maximum(M_prev, U_prev)
        pm = M_prev >= U_prev
        reward = np.full(m + 1, neg)
        reward[1:] = _weight(subs[i]) * (sim[i] - _MATCH_MIN)
        reward[1:][sim[i] <= _MATCH_MIN] = neg
        g = P + _SKIP_COST * cols
        g[0] = neg
        gmax = np.maximum.accumulate(g)
        garg = np.maximum.accumulate(np.where(g >= gmax, cols, 0))
        jump = np.full(m + 1, neg)
        jump[2:] = gmax[1:-1] - _SKIP_COST * (cols[2:] - 1)
        jarg = np.zeros(m + 1, dtype=np.int64)
        jarg[2:] = garg[1:-1]
        best = P.copy()  # continue the same script line
        if i > 0 and open_ is not None and open_[i - 1]:
            best[pm] += _CONTINUE_BONUS
        arg = cols.copy()
        better = jump > best
        best[better], arg[better] = jump[better], jarg[better]
        start = P[0]
        better = start > best
        best[better], arg[better] = start, 0
        M = reward + best
        M[0] = neg
        M[M < neg / 2] = neg
        prev_col[i] = arg
        if i > 0:
            from_m[i - 1] = pm
        M_prev, U_prev = M, P
    # backtrack
    last_M, last_U = M_prev, U_prev
    c = int(np.argmax(np.maximum(last_M, last_U)))
    state_m = last_M[c] >= last_U[c]
    out: list[int | None] = [None] * n
    for i in range(n - 1, -1, -1):
        if state_m:
            out[i] = c - 1
            c = int(prev_col[i, c])
        if i > 0:
            state_m = bool(from_m[i - 1, c])
    return out


def check_script_match(lines: list[Line], script: Script, min_score: float = DEFAULT_MIN_SCRIPT_SCORE) -> ScriptAlignment:
    """Align and raise BadInputError when the screenplay does not fit these lines (wrong movie)."""
    al = align_script(lines, script)
    if al.score < min_score:
        raise BadInputError(_mismatch_message(al.score))
    return al


def _mismatch_message(score: float) -> str:
    return f"subtitles/transcript do not match this screenplay (score {score:.2f}) — wrong movie?"


# ------------------------------------------------------------------------------------------------- clusters


def cluster_for_line(line: Line, diarization: Diarization | None) -> str | None:
    """The diarization speaker whose turns overlap the line longest (None when none overlaps)."""
    if diarization is None:
        return None
    ov = _overlaps(line, diarization)
    return max(ov, key=ov.get) if ov else None


class _TurnIndex:
    """Turns sorted by start with a running maximum of their ends: the turns overlapping [a, b) lie between
    the first whose running end passes a and the last starting before b, found by bisection (a linear scan
    of every turn per line made attribution quadratic on long media)."""

    def __init__(self, turns):
        order = sorted(turns, key=lambda t: t.start)
        self.turns = order
        self.starts = np.array([t.start for t in order], dtype=float)
        self.max_end = np.maximum.accumulate(np.array([t.end for t in order], dtype=float)) if order else np.zeros(0)

    def overlaps(self, start: float, end: float) -> dict[str, float]:
        out: dict[str, float] = {}
        lo = int(np.searchsorted(self.max_end, start, side="right"))
        hi = int(np.searchsorted(self.starts, end, side="left"))
        for t in self.turns[lo:hi]:
            d = min(end, t.end) - max(start, t.start)
            if d > 0:
                out[t.speaker] = out.get(t.speaker, 0.0) + d
        return out


def _turn_index(diarization: Diarization) -> _TurnIndex:
    """The index of diarization.turns, kept on the object while its turn list is the same (same list, length,
    first and last turn)."""
    turns = diarization.turns
    sig = (id(turns), len(turns), id(turns[0]) if turns else None, id(turns[-1]) if turns else None)
    cached = diarization.__dict__.get("_turn_index")
    if cached is None or cached[0] != sig:
        cached = (sig, _TurnIndex(turns))
        diarization.__dict__["_turn_index"] = cached
    return cached[1]


def _overlaps(line: Line, diarization: Diarization) -> dict[str, float]:
    return _turn_index(diarization).overlaps(line.start, line.end)


# ---------------------------------------------------------------------------------------------- attribution


@dataclass
class AttributionResult:
    attributions: list[Attribution]
    script_score: float | None = None
    script_used: bool = False
    warnings: list[str] = field(default_factory=list)
    overlaps: set[int] = field(default_factory=set)  # lines that are not one clean voice
    cluster_names: dict[str, str] = field(default_factory=dict)  # diarization cluster -> character
    alignment: ScriptAlignment | None = None

    def characters(self) -> dict[str, list[int]]:
        """Character -> line indices."""
        out: dict[str, list[int]] = {}
        for a in self.attributions:
            if a.character:
                out.setdefault(a.character, []).append(a.line_index)
        return out


@dataclass
class _Vote:
    key: str
    weight: float
    source: str
    conf: float


def attribute(
    lines: list[Line],
    *,
    script: Script | None = None,
    diarization: Diarization | None = None,
    line_speakers: list[str | None] | None = None,
    voiceprint_names: dict[str, tuple[str, float]] | None = None,
    user_labels: dict[int, str] | None = None,
    min_script_score: float = DEFAULT_MIN_SCRIPT_SCORE,
) -> AttributionResult:
    """Name the speaker of every line from all available signals (precedence in the module docstring)."""
    n = len(lines)
    res = AttributionResult(attributions=[])
    display: dict[str, tuple[int, str]] = {}  # key -> (priority, shown name); lower priority wins

    def register(name: str, prio: int) -> str | None:
        k = name_key(name)
        if k and (k not in display or prio < display[k][0]):
            display[k] = (prio, name.strip())
        return k

    user_labels = {i: v for i, v in (user_labels or {}).items() if 0 <= i < n and v and v.strip()}
    line_votes: list[list[_Vote]] = [[] for _ in range(n)]

    # line-level: script
    if script is not None:
        if not script.lines:
            res.warnings.append("the screenplay has no dialogue lines; not used")
        else:
            al = align_script(lines, script)
            res.alignment, res.script_score = al, round(al.score, 4)
            if al.score < min_script_score:
                res.warnings.append(_mismatch_message(al.score))
            else:
                res.script_used = True
                for i, j in enumerate(al.matches):
                    if j is None:
                        continue
                    who = script.lines[j].character
                    if is_group_name(who):
                        res.overlaps.add(i)
                        continue
                    q = al.quality[i]
                    k = register(_script_display(who), 2)
                    if k and q > 0:
                        line_votes[i].append(_Vote(k, W_SCRIPT * q, "script", 0.5 + 0.45 * q))

    # line-level: SDH cues and two-speaker cues
    for i, ln in enumerate(lines):
        if two_speaker_cue(ln.text):
            res.overlaps.add(i)
        if ln.speaker_cue:
            if is_group_name(ln.speaker_cue):
                res.overlaps.add(i)
            else:
                k = register(_script_display(ln.speaker_cue), 3)
                if k:
                    line_votes[i].append(_Vote(k, W_SDH, "sdh", 0.9))

    # clusters
    clusters: list[str | None]
    if line_speakers is not None:
        if len(line_speakers) != n:
            raise BadInputError(f"line_speakers has {len(line_speakers)} entries for {n} lines")
        clusters = list(line_speakers)
    elif diarization is not None:
        clusters = [cluster_for_line(ln, diarization) for ln in lines]
    else:
        clusters = [None] * n
    if diarization is not None:
        for i, ln in enumerate(lines):
            ov = sorted(_overlaps(ln, diarization).values(), reverse=True)
            if len(ov) >= 2 and ov[1] >= 0.3 and ov[1] >= 0.25 * max(ln.end - ln.start, 1e-6):
                res.overlaps.add(i)
    members: dict[str, list[int]] = {}
    for i, c in enumerate(clusters):
        if c is not None:
            members.setdefault(c, []).append(i)

    cluster_votes: list[list[_Vote]] = [[] for _ in range(n)]
    # user labels propagated to their clusters
    user_cluster: dict[str, str] = {}
    for c, idx in members.items():
        tally: dict[str, int] = {}
        for i in idx:
            if i in user_labels:
                k = register(user_labels[i], 0)
                tally[k] = tally.get(k, 0) + 1
        if not tally:
            continue
        top = max(tally, key=tally.get)
        if tally[top] * 2 > sum(tally.values()):
            user_cluster[c] = top
            for i in idx:
                cluster_votes[i].append(_Vote(top, W_USER_CLUSTER, "user", 0.9))
        else:
            names = ", ".join(display[k][1] for k in tally)
            res.warnings.append(f"speaker cluster {c} has lines you labelled as different characters ({names}); not propagated")
    # voiceprints
    for c, (name, score) in (voiceprint_names or {}).items():
        k = register(name, 1)
        if not k or c not in members:
            continue
        for i in members[c]:
            cluster_votes[i].append(_Vote(k, W_VOICEPRINT, "voiceprint", float(np.clip(score, 0.5, 0.95))))
    # cluster majority of the line-level names (leave-one-out)
    own = [max(v, key=lambda x: x.weight) if v else None for v in line_votes]
    for c, idx in members.items():
        tally: dict[str, float] = {}
        count: dict[str, int] = {}
        for i in idx:
            if own[i] is not None:
                tally[own[i].key] = tally.get(own[i].key, 0.0) + own[i].weight
                count[own[i].key] = count.get(own[i].key, 0) + 1
        for i in idx:
            t = dict(tally)
            cn = dict(count)
            if own[i] is not None:
                t[own[i].key] -= own[i].weight
                cn[own[i].key] -= 1
            total = sum(t.values())
            if total <= 1e-9:
                continue
            top = max(t, key=t.get)
            share = t[top] / total
            strength = float(np.clip((share - 0.5) / 0.4, 0.0, 1.0)) * min(1.0, sum(cn.values()) / 4.0)
            if strength > 0:
                cluster_votes[i].append(_Vote(top, W_VOICE * strength, "voice", 0.4 + 0.5 * strength))

    # decide
    for i in range(n):
        if i in user_labels:
            k = register(user_labels[i], 0)
            res.attributions.append(Attribution(i, display[k][1], 1.0, "user"))
            continue
        ev: dict[str, float] = {}
        contrib: dict[str, list[_Vote]] = {}
        for v in line_votes[i]:
            ev[v.key] = ev.get(v.key, 0.0) + v.weight
            contrib.setdefault(v.key, []).append(v)
        best_cluster: dict[str, _Vote] = {}
        for v in cluster_votes[i]:
            if v.key not in best_cluster or v.weight > best_cluster[v.key].weight:
                best_cluster[v.key] = v
        for k, v in best_cluster.items():
            ev[k] = ev.get(k, 0.0) + v.weight
            contrib.setdefault(k, []).append(v)
        if not ev:
            res.attributions.append(Attribution(i, None, 0.0, "none"))
            continue
        ranked = sorted(ev.items(), key=lambda kv: kv[1], reverse=True)
        k, e_win = ranked[0]
        e_second = ranked[1][1] if len(ranked) > 1 else 0.0
        votes = contrib[k]
        main = max(votes, key=lambda v: v.weight)
        conf = 1.0 - float(np.prod([1.0 - v.conf for v in votes]))
        conf *= 0.5 + 0.5 * (e_win - e_second) / e_win
        res.attributions.append(Attribution(i, display[k][1], round(min(conf, 0.99), 3), main.source))

    # what each cluster ended up as (majority of its final names)
    for c, idx in members.items():
        names = [res.attributions[i].character for i in idx if res.attributions[i].character]
        if names:
            top = max(set(names), key=names.count)
            if names.count(top) * 2 > len(idx):
                res.cluster_names[c] = top
    return res


def _script_display(name: str) -> str:
    """A script/SDH name without extensions or punctuation, e.g. 'ALICE (V.O.)' -> 'ALICE', 'Dr. Mo:' -> 'Dr. Mo'."""
    n = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", name)
    n = re.sub(r"\b(CONT'?D|V\.O\.|O\.S\.|O\.C\.)(?=\s|$)", " ", n, flags=re.I)
    return re.sub(r"\s+", " ", n).strip(" :-\t\n") or name.strip()


SPLIT_DISTANCE = 0.25  # average-linkage cosine distance (Resemblyzer) from which one cluster's lines are two voices
SPLIT_MIN_LINES = 3  # clean lines a voice needs to become a speaker of its own
SPLIT_MIN_SECONDS = 1.0  # a clean line this long (and not overlapped) has a voiceprint sure enough to group by
SPLIT_MAX_SIMILARITY = 0.83  # a group whose centroid is nearer the cluster's main voice than this is that voice
# (episode fixture: two people 0.74-0.81 apart; groups of one person's lines and half-lines 0.85-0.86)


def split_mixed_clusters(line_speakers: list[str | None], embeddings: dict[int, np.ndarray],
                         clean: set[int]) -> tuple[list[str | None], dict[str, np.ndarray]]:
    """Speaker labels per line with each diarization cluster that holds two or more voices split by the lines' own
    voiceprints, and the unit centroid of every label changed or added.

    Window-level clustering merges voices that line-level voiceprints tell apart (the episode fixture: MAYA with
    NORA, DANIEL with HALE). A cluster's ``clean`` lines (indices: long, not overlapped) with a voiceprint in
    ``embeddings`` (unit vectors by line index) are grouped by average linkage at ``SPLIT_DISTANCE``; each group of
    at least ``SPLIT_MIN_LINES`` lines whose centroid lies under ``SPLIT_MAX_SIMILARITY`` to the largest group's is
    a voice of its own; the largest keeps the cluster's label and the others get new ones. Every line of the
    cluster with a voiceprint then goes to the nearest voice; lines without stay."""
    from scipy.cluster.hierarchy import fcluster, linkage

    out = list(line_speakers)
    centroids: dict[str, np.ndarray] = {}
    labels = sorted({s for s in line_speakers if s})
    numbers = [int(m.group(1)) for s in labels if (m := re.fullmatch(r"SPEAKER_(\d+)", s))]
    next_number = max(numbers, default=-1) + 1
    for label in labels:
        members = [i for i, s in enumerate(line_speakers) if s == label and i in embeddings]
        sure = [i for i in members if i in clean]
        if len(sure) < 2 * SPLIT_MIN_LINES:
            continue
        groups = fcluster(linkage(np.stack([embeddings[i] for i in sure]), "average", metric="cosine"),
                          SPLIT_DISTANCE, "distance")
        voices = [v for v in sorted(([i for i, g in zip(sure, groups) if g == k] for k in sorted(set(groups))),
                                    key=len, reverse=True) if len(v) >= SPLIT_MIN_LINES]
        if len(voices) < 2:
            continue
        cents = [unit(np.mean([embeddings[i] for i in v], axis=0)) for v in voices]
        keep = [0] + [k for k in range(1, len(voices)) if float(cents[0] @ cents[k]) < SPLIT_MAX_SIMILARITY]
        if len(keep) < 2:
            continue
        voices = [voices[k] for k in keep]
        names = [label]
        for _ in voices[1:]:
            names.append(f"SPEAKER_{next_number:02d}")
            next_number += 1
        at = np.stack([cents[k] for k in keep])
        for i in members:
            out[i] = names[int(np.argmax(at @ embeddings[i]))]
        centroids.update({n: unit(np.mean([embeddings[i] for i in members if out[i] == n], axis=0)) for n in names
                          if any(out[i] == n for i in members)})
    return out, centroids


NEAREST_VOICE_MARGIN = 0.05  # cosine by which another cluster's voice must be nearer a line's own to take it
# (episode fixture: short lines the window clustering gave to the louder voice around them are 0.055-0.29 nearer
# their own speaker's cluster; of 193 lines, 13 in a wrong cluster move to their own and one right line moves away)


def move_to_nearest_voice(line_speakers: list[str | None], embeddings: dict[int, np.ndarray],
                          centroids: dict[str, np.ndarray], *,
                          margin: float = NEAREST_VOICE_MARGIN) -> tuple[list[str | None], int]:
    """Speaker labels per line with each line whose own voiceprint (``embeddings``, unit vectors by line index)
    lies nearer another cluster's centroid than its own cluster's by more than ``margin`` moved to that cluster,
    and how many moved. Window-level clustering gives a short line the voice that fills most of its windows (an
    interruption, a one-word answer in a long exchange); the line's own voice says who it is."""
    if len(centroids) < 2:
        return list(line_speakers), 0
    labels = sorted(centroids)
    at = np.stack([unit(centroids[k]) for k in labels])
    out, moved = list(line_speakers), 0
    for i, own in enumerate(line_speakers):
        if own not in centroids or i not in embeddings:
            continue
        sims = at @ embeddings[i]
        best = int(np.argmax(sims))
        if labels[best] != own and float(sims[best] - sims[labels.index(own)]) > margin:
            out[i], moved = labels[best], moved + 1
    return out, moved


OWN_VOICE_REFERENCES = 8  # longest clean lines per character whose voices make its reference
OWN_VOICE_MIN_REFERENCE = 1.0  # seconds a reference line holds at least
OWN_VOICE_MIN_REFERENCES = 2  # reference lines a character needs (an SDH names a speaker a few times only)
OWN_VOICE_LABEL_IN_CLUSTER = 0.75  # a character labelled once is checked where its one line sounds this unlike the
# cluster it names (resemblyzer cosine to the cluster's voice: 0.81-0.98 for labels of their cluster's voice on the
# fixtures; 0.66 for the 1.5-min SDH episode's THEO in a cluster of HALE, VICTOR and DANIEL)
OWN_VOICE_SCENE = 30.0  # seconds: characters named this close to a line are the ones who may say it
OWN_VOICE_MARGIN = 0.03  # cosine by which another present character's voice must be nearer to rename a line
OWN_VOICE_LONG = 1.5  # seconds from which a line's voiceprint is a sure one:
OWN_VOICE_FLOOR = 0.8  # a line that long is left unnamed when no present character's voice comes this near
OWN_VOICE_FLOOR_SHORT = 0.62  # (resemblyzer cosine; a shorter line's own voice is a rougher one)


def own_voice_lines(lines: list[Line], attributions: list[Attribution], overlaps: set[int] | None = None,
                    ) -> tuple[dict[str, list[int]], list[int]]:
    """What :func:`recheck_by_own_voice` needs embedded: per character, the longest clean lines the screenplay,
    an SDH name cue or the user named (the character's reference voice); and the lines named only by their
    diarization cluster's majority ("voice"), to be checked against them."""
    overlaps = overlaps or set()
    refs: dict[str, list[int]] = {}
    for i, (ln, a) in enumerate(zip(lines, attributions)):
        if (a.character and a.source not in ("voice", "none") and a.confidence >= 0.5 and i not in overlaps
                and ln.end - ln.start >= OWN_VOICE_MIN_REFERENCE):
            refs.setdefault(a.character, []).append(i)
    refs = {c: sorted(idx, key=lambda i: lines[i].start - lines[i].end)[:OWN_VOICE_REFERENCES] for c, idx in refs.items()}
    return refs, [i for i, a in enumerate(attributions) if a.source == "voice" and a.character]


def recheck_by_own_voice(lines: list[Line], attributions: list[Attribution], refs: dict[str, list[int]],
                         checked: list[int], embeddings: dict[int, np.ndarray],
                         script_names: dict[int, str] | None = None, *,
                         line_clusters: list[str | None] | None = None,
                         cluster_voices: dict[str, np.ndarray] | None = None) -> tuple[list[Attribution], int]:
    """Attributions with each line named by its cluster's majority re-decided by the line's own voice: a cluster
    can hold two people, so a line goes to another character present in the scene (named within
    ``OWN_VOICE_SCENE`` seconds) whose reference voice is ``OWN_VOICE_MARGIN`` nearer than the cluster's name, and a
    line sounding like none of them (under ``OWN_VOICE_FLOOR``, or ``OWN_VOICE_FLOOR_SHORT`` for a line shorter
    than ``OWN_VOICE_LONG``) is left unnamed. ``embeddings``: unit voiceprints by line index (a line without one stays); ``script_names``: the
    character of the screenplay line a line loosely matched (one more candidate). A character with one reference
    line only (an SDH labels it once) is checked only where that line sounds unlike the voice of the line's
    cluster (``line_clusters``: label per line; ``cluster_voices``: centroid per label; cosine under
    ``OWN_VOICE_LABEL_IN_CLUSTER``): the clustering merged voices there. Second: lines changed."""
    embedded = {c: [i for i in idx if i in embeddings] for c, idx in refs.items()}
    refs_v = {c: unit(np.mean([embeddings[i] for i in idx], axis=0))
              for c, idx in embedded.items() if len(idx) >= OWN_VOICE_MIN_REFERENCES}
    once = {c: embeddings[idx[0]] for c, idx in embedded.items() if len(idx) == 1}
    cluster_units = {k: unit(v) for k, v in (cluster_voices or {}).items()} if once else {}
    out = list(attributions)
    changed = 0
    for i in checked:
        a, e = attributions[i], embeddings.get(i)
        if e is None:
            continue
        voices = refs_v
        if a.character not in refs_v:
            cluster = line_clusters[i] if line_clusters else None
            if (a.character not in once or cluster not in cluster_units
                    or float(np.dot(once[a.character], cluster_units[cluster])) >= OWN_VOICE_LABEL_IN_CLUSTER):
                continue
            voices = {**refs_v, a.character: once[a.character]}
        t = lines[i].start
        present = {b.character for k, b in enumerate(attributions) if b.character and b.source not in ("voice", "none")
                   and abs(lines[k].start - t) <= OWN_VOICE_SCENE} | {a.character}
        if script_names and script_names.get(i):
            present.add(script_names[i])
        sims = {c: float(np.dot(e, v)) for c, v in voices.items() if c in present}
        best = max(sims, key=sims.get)
        floor = OWN_VOICE_FLOOR if lines[i].end - lines[i].start >= OWN_VOICE_LONG else OWN_VOICE_FLOOR_SHORT
        if sims[best] < floor:
            out[i] = Attribution(a.line_index, None, 0.0, "none")
        elif best != a.character and sims[best] - sims[a.character] >= OWN_VOICE_MARGIN:
            out[i] = Attribution(a.line_index, best, round(min(a.confidence, 0.5), 3), "voice")
        else:
            continue
        changed += 1
    return out, changed


def script_names_of(alignment: ScriptAlignment | None, script: Script | None) -> dict[int, str]:
    """Per line index, the (shown) name of the screenplay line the alignment matched it to, however loosely."""
    if alignment is None or script is None:
        return {}
    return {i: _script_display(script.lines[j].character) for i, j in enumerate(alignment.matches) if j is not None}
