using FashionMnist;
using Xunit;

namespace Ml.Cnn.Samples.Tests;

/// <summary>The README's main command, run with one epoch: it must train, evaluate, plot, checkpoint and save a model zip that reloads.</summary>
public sealed class SampleSmokeTests
{
    [Fact]
    public void FashionMnistSampleRunsEndToEnd()
    {
        string output = Path.Combine(Path.GetTempPath(), "mlcnn-sample-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = SampleRun.Run(new Arguments(Arguments.EmbeddedData, Epochs: 1, "reference-cnn", output), interactive: false);
            Assert.InRange(result.Accuracy, 0.7, 1.0);
            Assert.True(new FileInfo(result.CurvesPath).Length > 1000);
            Assert.True(File.Exists(result.CheckpointPath));
            Assert.Equal(result.Accuracy, result.ReloadedAccuracy); // the saved model zip scores as the fitted pipeline did
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }
}
