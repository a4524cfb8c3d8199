namespace Ml.Cnn.Training;

/// <summary>How the learning rate evolves.</summary>
public enum ScheduleKind
{
    /// <summary>The base rate throughout.</summary>
    Constant,
    /// <summary>Multiply by <see cref="LearningRateSchedule.Factor"/> every <see cref="LearningRateSchedule.StepEpochs"/> epochs (the lectures' ×0.1).</summary>
    StepDecay,
    /// <summary>Cosine annealing from the base rate to <see cref="LearningRateSchedule.MinRate"/> over the run.</summary>
    Cosine,
    /// <summary>Multiply by <see cref="LearningRateSchedule.Factor"/> when validation loss stops improving for <see cref="LearningRateSchedule.Patience"/> epochs.</summary>
    ReduceOnPlateau,
}

/// <summary>
/// A learning-rate schedule, optionally preceded by a linear warm-up. Its only mutable state (the plateau
/// bookkeeping) is exposed so checkpoints can restore it exactly.
/// </summary>
public sealed class LearningRateSchedule
{
    /// <summary>The schedule's shape.</summary>
    public ScheduleKind Kind { get; init; } = ScheduleKind.Constant;

    /// <summary>Multiplier for step decay and plateau reduction.</summary>
    public float Factor { get; init; } = 0.1f;

    /// <summary>Epochs between step decays.</summary>
    public int StepEpochs { get; init; } = 10;

    /// <summary>Epochs without improvement before a plateau reduction.</summary>
    public int Patience { get; init; } = 3;

    /// <summary>Floor of cosine annealing.</summary>
    public float MinRate { get; init; }

    /// <summary>Epochs of linear warm-up from near zero to the scheduled rate (0 = none).</summary>
    public int WarmupEpochs { get; init; }

    /// <summary>Current plateau multiplier.</summary>
    public float PlateauScale { get; set; } = 1;

    /// <summary>Best validation loss seen (plateau bookkeeping).</summary>
    public float PlateauBest { get; set; } = float.PositiveInfinity;

    /// <summary>Epochs since the best validation loss (plateau bookkeeping).</summary>
    public int PlateauWait { get; set; }

    internal LearningRateSchedule Copy() => (LearningRateSchedule)MemberwiseClone();

    internal void Validate(float baseRate)
    {
        TrainerOptions.Require(Enum.IsDefined(Kind), "Schedule.Kind", Kind, "is not a schedule");
        TrainerOptions.Require(Factor > 0 && Factor <= 1, "Schedule.Factor", Factor, "must be in (0, 1]");
        TrainerOptions.Require(StepEpochs > 0, "Schedule.StepEpochs", StepEpochs, "must be positive");
        TrainerOptions.Require(Patience >= 0, "Schedule.Patience", Patience, "must not be negative");
        TrainerOptions.Require(MinRate >= 0 && MinRate <= baseRate, "Schedule.MinRate", MinRate, $"must be in [0, the learning rate {baseRate}]");
        TrainerOptions.Require(WarmupEpochs >= 0, "Schedule.WarmupEpochs", WarmupEpochs, "must not be negative");
    }

    /// <summary>The rate for the step at fractional epoch position <c>epoch + batch / batchesPerEpoch</c>.</summary>
    public float Rate(float baseRate, int epoch, int batch, int batchesPerEpoch, int totalEpochs)
    {
        double position = epoch + (double)batch / batchesPerEpoch;
        double rate = Kind switch
        {
            ScheduleKind.Constant => baseRate,
            ScheduleKind.StepDecay => baseRate * Math.Pow(Factor, epoch / Math.Max(1, StepEpochs)),
            ScheduleKind.Cosine => MinRate + (baseRate - MinRate) * 0.5 * (1 + Math.Cos(Math.PI * position / Math.Max(1, totalEpochs))),
            ScheduleKind.ReduceOnPlateau => baseRate * PlateauScale,
            _ => throw new InvalidOperationException($"Unknown schedule {Kind}."),
        };
        if (WarmupEpochs > 0 && position < WarmupEpochs)
            rate *= (position * batchesPerEpoch + 1) / (WarmupEpochs * (double)batchesPerEpoch);
        return (float)rate;
    }

    /// <summary>Feeds an epoch's validation loss to the plateau rule.</summary>
    public void EndEpoch(float validationLoss)
    {
        if (Kind != ScheduleKind.ReduceOnPlateau || float.IsNaN(validationLoss)) return;
        if (validationLoss < PlateauBest) { PlateauBest = validationLoss; PlateauWait = 0; return; }
        if (++PlateauWait > Patience)
        {
            PlateauScale *= Factor;
            PlateauWait = 0;
        }
    }
}
