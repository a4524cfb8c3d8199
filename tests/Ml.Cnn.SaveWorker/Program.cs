using Microsoft.ML;
using Ml.Cnn.MLNet;
using Ml.Cnn.SaveWorker;
using Ml.Cnn.Training;

// Usage: Ml.Cnn.SaveWorker zip|checkpoint PATH — writes "saved" after each complete save, until killed.
string mode = args[0], path = args[1];
if (mode == "zip")
{
    var ml = new MLContext(seed: 1);
    var (model, schema) = KillTarget.ModelZip(ml);
    while (true)
    {
        ml.Model.SaveAtomically(model, schema, path);
        Console.WriteLine("saved");
    }
}
var options = KillTarget.CheckpointOptions(path, epochs: 100_000);
options.Progress = new EpochLines();
Trainer.Train(KillTarget.Network(), KillTarget.Data(), options);

internal sealed class EpochLines : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value)
    {
        if (value.EpochEnd) Console.WriteLine("saved");
    }
}
