"""The metric definitions named in a report (short forms of shared/reference/definitions.md)."""
from __future__ import annotations

GLOSSARY = (
    ("acc", "mean of 1[argmax p = y] over the samples."),
    ("robust_acc", "fraction of points that are clean-correct and that no attack of the sequence breaks within "
                   "‖δ‖ ≤ ε (per-point worst case; ε in [0,1] pixel units)."),
    ("attack_success_rate", "broken / clean-correct."),
    ("ece_15_equal_width", "Σ_b |B_b|/N · |acc_b − conf_b| over 15 equal-width confidence bins (last bin closed)."),
    ("_ts suffix", "the same metric after temperature scaling with T fitted once on held-out clean data and "
                   "applied unchanged to every shifted condition."),
    ("nll / brier_sum", "mean −log p_y (natural log); mean Σ_k (p_k − 1[k = y])², range [0, 2]."),
    ("mean_corruption_acc", "mean acc over the corruption × severity conditions evaluated (the 15 common ones)."),
    ("mce_alexnet", "mean over the 15 common corruptions of Σ_s E_{s,c} / Σ_s E^AlexNet_{s,c} (needs severities "
                    "1-5; AlexNet errors are from the released ImageNet-C)."),
    ("auroc", "P(score_ood > score_id) + ½ P(tie); OOD positive, score higher = more OOD."),
    ("fpr_at_95tpr_id", "fraction of OOD samples accepted at the threshold that keeps 95% of ID samples "
                        "(ODIN/Energy papers' FPR@95)."),
    ("aupr_out", "area under precision-recall with OOD positive."),
    ("near / far means", "unweighted mean over the OOD sets of that kind (OpenOOD v1.5)."),
    ("[low, high]", "percentile bootstrap 95% interval over samples (B ≥ 1000, seeded by the run seed)."),
)
