"""One analysis, computed whole before anything is written: the confused pairs, the top losses
and the label-issue ranking of a subject's predictions, with the samples behind them."""

from dataclasses import dataclass

from multiclass.analysis.confusion import Pair, confused_pairs
from multiclass.analysis.label_issues import rank_label_issues
from multiclass.analysis.losses import Shown, top_losses
from multiclass.analysis.samples import Samples, samples_of
from multiclass.analysis.source import Subject


@dataclass(frozen=True)
class Analysis:
    subject: Subject
    samples: Samples
    pairs: list[Pair]
    losses: Shown
    issues: Shown | None  # every flagged row, likeliest issue first; None: no ranking
    issues_note: str  # how the ranking stands (subject.ranking), or why there is none


def analyse(subject: Subject) -> Analysis:
    predictions = subject.predictions
    samples = samples_of(subject)  # first: a data set that does not match stops everything
    losses = Shown(predictions, top_losses(predictions))
    issues, note = None, subject.no_ranking
    if subject.ranking is not None:
        ranking = rank_label_issues(predictions)
        if ranking.rows is not None:
            issues, note = Shown(predictions, ranking.rows), subject.ranking
        else:
            note = ranking.why_none
    return Analysis(subject, samples, confused_pairs(predictions), losses, issues, str(note))
