using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Gpu;
using Ml.Cnn.MLNet;
using Ml.Cnn.Neighbors;
using Ml.Cnn.Tests.MLNet;
using Ml.Cnn.Tests.Support;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Gpu;

/// <summary>
/// The ML.NET trainers on a working GPU backend: <c>MLContext.GpuDeviceId</c> opens the GPU backend (its kernels run
/// by ILGPU's CPU accelerator here, in place of a CUDA device), the fit trains and scores there, and the model zip it
/// saves scores on the CPU without Ml.Cnn.
/// </summary>
[Collection(TestBackends.GpuCollection)]
public sealed class GpuMLNetTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ml-cnn-gpu-mlnet-").FullName;
    private readonly List<GpuBackend> _opened = [];

    public GpuMLNetTests() => CnnTraining.DeviceOpener.Value = id =>
    {
        Assert.Equal(0, id);
        var backend = (GpuBackend)TestBackends.Create("gpu-on-cpu");
        _opened.Add(backend);
        return backend;
    };

    public void Dispose()
    {
        CnnTraining.DeviceOpener.Value = null;
        Directory.Delete(_folder, recursive: true);
    }

    private static (CnnMulticlassTransformer Model, IDataView Train, IDataView Test) Fit(MLContext ml)
    {
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionData.View(ml, train: true, 64));
        var train = toKey.Transform(FashionData.View(ml, train: true, 64));
        var test = toKey.Transform(FashionData.View(ml, train: false, 24));
        var model = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
        {
            Architecture = "lenet5", Epochs = 2, BatchSize = 16, LearningRate = 0.02f, Threads = 1,
        }).Fit(train);
        return (model, train, test);
    }

    [Fact]
    public void AClassifierTrainsAndScoresOnTheDeviceLikeOnTheCpuAndItsZipScoresWithoutMlCnn()
    {
        var (onGpu, train, test) = Fit(new MLContext(seed: 1) { GpuDeviceId = 0 });
        var (onCpu, _, _) = Fit(new MLContext(seed: 1));

        var gpu = Assert.Single(_opened);
        Assert.Same(gpu, onGpu.Model.Network.Backend);
        Assert.Empty(gpu.Fallbacks);
        AssertClose(onCpu.Model.Training!.History.Select(e => e.TrainingLoss).ToArray(),
            onGpu.Model.Training!.History.Select(e => e.TrainingLoss).ToArray(), "epoch losses", rel: 1e-4, abs: 1e-5);
        var gpuScores = onGpu.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();
        var cpuScores = onCpu.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();
        AssertClose(cpuScores, gpuScores, "scores of the device-trained model", rel: 1e-3, abs: 1e-4);

        string path = Path.Combine(_folder, "model.zip");
        new MLContext().Model.SaveAtomically(onGpu, train.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        var zipScores = loaded.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();
        AssertClose(gpuScores, zipScores, "the zip's scores on the CPU", rel: 1e-4, abs: 1e-5);
    }

    [Theory]
    [InlineData(KnnDistance.Euclidean)]
    [InlineData(KnnDistance.Cosine)]
    public void KNearestNeighboursSearchOnTheDeviceAndFindTheCpusNeighbours(KnnDistance distance)
    {
        KnnTransformer Fit(MLContext ml, out IDataView test)
        {
            var toKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionData.View(ml, train: true, 300));
            test = toKey.Transform(FashionData.View(ml, train: false, 100));
            return ml.MulticlassClassification.Trainers.KNearestNeighbors(new KnnOptions
            {
                CandidateK = [1, 3, 7], CandidateDistances = [distance], Folds = 3, Threads = 1,
            }).Fit(toKey.Transform(FashionData.View(ml, train: true, 300)));
        }
        var onGpu = Fit(new MLContext(seed: 1) { GpuDeviceId = 0 }, out var test);
        var onCpu = Fit(new MLContext(seed: 1), out _);

        Assert.Same(Assert.Single(_opened), onGpu.Classifier.Device);
        Assert.Null(onCpu.Classifier.Device);
        Assert.Equal(onCpu.CrossValidationResults.Select(r => r.MeanAccuracy), onGpu.CrossValidationResults.Select(r => r.MeanAccuracy));
        Assert.Equal(onCpu.Classifier.K, onGpu.Classifier.K);
        // The device's products only shortlist; the exact re-ranking on the host makes the votes the CPU's.
        Assert.Equal(onCpu.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s),
            onGpu.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s));
        onGpu.Classifier.Dispose();
    }

    [Fact]
    public void DisposingAFittedModelReleasesTheDeviceItsFitOpened()
    {
        var opened = new List<GpuBackend>();
        CnnTraining.DeviceOpener.Value = _ =>
        {
            opened.Add(TestBackends.NewGpu()); // their own: these get disposed
            return opened[^1];
        };
        var ml = new MLContext(seed: 1) { GpuDeviceId = 0 };
        var train = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionData.View(ml, train: true, 32))
            .Transform(FashionData.View(ml, train: true, 32));
        var cnn = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "linear", Epochs = 1 })
            .Fit(train);
        var knn = ml.MulticlassClassification.Trainers.KNearestNeighbors(k: 3).Fit(train);
        Assert.Equal(2, opened.Count);
        Assert.All(opened, gpu => Assert.False(gpu.Accelerator.IsDisposed));
        // A chain of them, as ML.NET pipelines return it, disposes both.
        new TransformerChain<ITransformer>(cnn, knn).Dispose();
        Assert.All(opened, gpu => Assert.True(gpu.Accelerator.IsDisposed));
    }

    [Fact]
    public void AFitThatFailsReleasesTheDeviceItOpened()
    {
        GpuBackend? opened = null;
        CnnTraining.DeviceOpener.Value = _ => opened = TestBackends.NewGpu(); // its own: this one gets disposed
        var ml = new MLContext(seed: 1) { GpuDeviceId = 0 };
        var train = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionData.View(ml, train: true, 32))
            .Transform(FashionData.View(ml, train: true, 32));
        var trainer = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
        {
            Architecture = "linear", Epochs = 1, Cancellation = new CancellationToken(canceled: true),
        });
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Fit(train));
        Assert.True(opened!.Accelerator.IsDisposed);
    }
}
