namespace Ml.Cnn.Sweeps;

/// <summary>
/// Decides, each time a trial reports an intermediate value (after an epoch, or after a fold of a cross-validated
/// trial), whether it should stop because it cannot win. Reads the study as storage holds it, so workers on other
/// machines judge by the same results.
/// </summary>
public interface IPruner
{
    /// <summary>The pruner and its settings, stored with the study.</summary>
    string Description { get; }

    /// <summary>Whether <paramref name="trial"/>, which has just reported <paramref name="step"/>, should stop.</summary>
    bool ShouldPrune(StudyView study, TrialRecord trial, int step);
}

/// <summary>Never stops a trial.</summary>
public sealed class NoPruner : IPruner
{
    /// <inheritdoc/>
    public string Description => "none";

    /// <inheritdoc/>
    public bool ShouldPrune(StudyView study, TrialRecord trial, int step) => false;
}

/// <summary>
/// Median stopping (Golovin et al., 2017): after the first <c>warmupSteps</c> steps, once <c>startupTrials</c> trials
/// have completed, a trial stops when its value at a step is worse than the median of the values the completed trials
/// reported at that step.
/// </summary>
public sealed class MedianPruner : IPruner
{
    private readonly int startupTrials, warmupSteps;

    /// <summary>Median stopping after <paramref name="startupTrials"/> completed trials, judging from step <paramref name="warmupSteps"/> + 1.</summary>
    public MedianPruner(int startupTrials = 5, int warmupSteps = 1)
    {
        if (startupTrials < 1) throw new ArgumentOutOfRangeException(nameof(startupTrials), startupTrials, "The median needs at least 1 completed trial.");
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "Warm-up steps must not be negative.");
        (this.startupTrials, this.warmupSteps) = (startupTrials, warmupSteps);
    }

    /// <inheritdoc/>
    public string Description => $"median(startup={startupTrials}, warmup={warmupSteps})";

    /// <inheritdoc/>
    public bool ShouldPrune(StudyView study, TrialRecord trial, int step)
    {
        if (step <= warmupSteps || study.Trials.Count(t => t.State == TrialState.Complete) < startupTrials) return false;
        if (trial.At(step) is not { } value) return false;
        var others = study.Trials.Where(t => t.Number != trial.Number && t.State == TrialState.Complete)
            .Select(t => t.At(step)).OfType<double>().Order().ToList();
        if (others.Count == 0) return false;
        double median = others.Count % 2 == 1 ? others[others.Count / 2] : (others[others.Count / 2 - 1] + others[others.Count / 2]) / 2;
        return study.Better(median, value);
    }
}

/// <summary>
/// Asynchronous successive halving (ASHA, Li et al., 2018). Rungs sit at steps <c>minResource</c> × η^k; at a rung a
/// trial goes on only if its value is among the best 1/η of the values recorded at that rung so far (among the first
/// η − 1 trials to reach it, only if it is the best of them). A step between rungs is never judged.
/// </summary>
public sealed class AshaPruner : IPruner
{
    private readonly int minResource, reductionFactor;

    /// <summary>ASHA with rungs at <paramref name="minResource"/> × <paramref name="reductionFactor"/>^k.</summary>
    public AshaPruner(int minResource = 1, int reductionFactor = 3)
    {
        if (minResource < 1) throw new ArgumentOutOfRangeException(nameof(minResource), minResource, "ASHA's minimum resource must be at least 1.");
        if (reductionFactor < 2) throw new ArgumentOutOfRangeException(nameof(reductionFactor), reductionFactor, "ASHA's reduction factor must be at least 2.");
        (this.minResource, this.reductionFactor) = (minResource, reductionFactor);
    }

    /// <inheritdoc/>
    public string Description => $"asha(min={minResource}, eta={reductionFactor})";

    /// <inheritdoc/>
    public bool ShouldPrune(StudyView study, TrialRecord trial, int step)
    {
        if (!IsRung(step) || trial.At(step) is not { } value) return false;
        var atRung = study.BestFirst(study.Trials.Where(t => t.Number != trial.Number && t.State != TrialState.Failed)
            .Select(t => t.At(step)).OfType<double>().Append(value));
        int promotable = Math.Max(1, atRung.Count / reductionFactor);
        return study.Better(atRung[promotable - 1], value);
    }

    /// <summary>Whether <paramref name="step"/> is a rung: minResource × η^k.</summary>
    public bool IsRung(int step)
    {
        for (long r = minResource; r <= step; r *= reductionFactor) if (r == step) return true;
        return false;
    }
}
