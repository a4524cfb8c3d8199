namespace Ml.Cnn.Sweeps;

/// <summary>Whether a larger or a smaller objective is better.</summary>
public enum StudyDirection
{
    /// <summary>Larger is better (accuracy, R²).</summary>
    Maximize,

    /// <summary>Smaller is better (log-loss, errors).</summary>
    Minimize,
}

/// <summary>Where a trial stands.</summary>
public enum TrialState
{
    /// <summary>Leased by a worker (or waiting to be taken again after its worker's lease ran out).</summary>
    Running,

    /// <summary>Finished with an objective value.</summary>
    Complete,

    /// <summary>Stopped by the pruner: its intermediate results could not win.</summary>
    Pruned,

    /// <summary>Threw, diverged, produced no number, or ran past its time or memory limit (see the message).</summary>
    Failed,
}

/// <summary>One trial of a study as storage holds it.</summary>
/// <param name="Number">0-based, in the order trials were asked for.</param>
/// <param name="State">Where it stands.</param>
/// <param name="Parameters">Its hyperparameters.</param>
/// <param name="Value">The objective (the last intermediate value for a pruned trial; null while running or failed).</param>
/// <param name="ValueStd">Standard deviation over folds (null without cross-validation).</param>
/// <param name="Intermediate">Intermediate values by step (epoch or fold), in step order.</param>
/// <param name="Attempts">How many times a worker took it (more than 1 after a worker died mid-trial).</param>
/// <param name="Seconds">Wall time of the attempt that finished it.</param>
/// <param name="Message">Why it failed or was pruned.</param>
/// <param name="Worker">The worker that holds or last held it (host:process:slot:suffix).</param>
public sealed record TrialRecord(int Number, TrialState State, Parameters Parameters, double? Value, double? ValueStd,
    IReadOnlyList<(int Step, double Value)> Intermediate, int Attempts, double Seconds, string? Message, string? Worker = null)
{
    /// <summary>Steps (epochs or folds) the trial ran.</summary>
    public int Steps => Intermediate.Count == 0 ? (State == TrialState.Complete ? 1 : 0) : Intermediate[^1].Step;

    /// <summary>The intermediate value reported at <paramref name="step"/>, if any.</summary>
    public double? At(int step)
    {
        foreach (var (s, v) in Intermediate) if (s == step) return v;
        return null;
    }
}

/// <summary>What a sampler and a pruner may read: the study's direction and its trials so far.</summary>
/// <param name="Direction">Whether larger values win.</param>
/// <param name="Trials">Every trial, in number order.</param>
public sealed record StudyView(StudyDirection Direction, IReadOnlyList<TrialRecord> Trials)
{
    /// <summary>Whether <paramref name="a"/> beats <paramref name="b"/>.</summary>
    public bool Better(double a, double b) => Direction == StudyDirection.Maximize ? a > b : a < b;

    /// <summary>Sorts values best first.</summary>
    public List<double> BestFirst(IEnumerable<double> values)
    {
        var list = values.ToList();
        list.Sort();
        if (Direction == StudyDirection.Maximize) list.Reverse();
        return list;
    }
}
