using System.Reflection;
using Microsoft.ML.Runtime;
using Ml.Cnn.Training;

namespace Ml.Cnn.MLNet;

/// <summary>
/// The second place that reaches into ML.NET (beside <see cref="SchemaShapeAdapter"/>): what a trainer needs of the
/// MLContext it was created from. ML.NET's own trainers take the context's seed and write their progress to
/// <c>MLContext.Log</c> through internal accessors (the catalog's <c>IInternalCatalog.Environment</c> and
/// <c>ChannelMessage</c>'s constructor); we reach both by reflection. MLContextAccessTests fails loudly if a future
/// ML.NET renames them; until then a missing piece only turns the feature off (seed 0, no log lines).
/// </summary>
internal static class MLContextAccess
{
    private static readonly PropertyInfo? EnvironmentProperty = typeof(Microsoft.ML.TrainCatalogBase).GetNestedType(
            "CatalogInstantiatorBase", BindingFlags.Public | BindingFlags.NonPublic)
        ?.GetProperty("Microsoft.ML.Data.IInternalCatalog.Environment", BindingFlags.Instance | BindingFlags.NonPublic);

    private static readonly ConstructorInfo? MessageConstructor = typeof(ChannelMessage).GetConstructor(
        BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, [typeof(ChannelMessageKind), typeof(MessageSensitivity), typeof(string)]);

    /// <summary>Whether both accessors resolved against this ML.NET.</summary>
    internal static bool Resolved => EnvironmentProperty is not null && MessageConstructor is not null;

    /// <summary>The environment (the MLContext) behind a trainer catalog, or null.</summary>
    public static IHostEnvironment? EnvironmentOf(object catalog) => EnvironmentProperty?.GetValue(catalog) as IHostEnvironment;

    /// <summary>
    /// A seed from the context's random source, as ML.NET's trainers draw one: the same for the same
    /// <c>new MLContext(seed: n)</c> and the same order of trainer creation.
    /// </summary>
    public static ulong SeedFrom(IHostEnvironment? environment) =>
        environment is null ? 0 : (uint)environment.Register("Ml.Cnn").Rand.Next();

    /// <summary>
    /// The context's <c>MLContext.GpuDeviceId</c> and <c>FallbackToCpu</c> (ML.NET's own settings, which its TorchSharp
    /// and Vision trainers read), from the environment's public properties; (null, false) where absent.
    /// </summary>
    public static (int? DeviceId, bool FallbackToCpu) GpuSettings(IHostEnvironment? environment)
    {
        if (environment is null) return (null, false);
        var type = environment.GetType();
        var id = type.GetProperty("GpuDeviceId", BindingFlags.Instance | BindingFlags.Public)?.GetValue(environment) as int?;
        var fallback = type.GetProperty("FallbackToCpu", BindingFlags.Instance | BindingFlags.Public)?.GetValue(environment) as bool?;
        return (id, fallback ?? false);
    }

    /// <summary>One information line through <c>MLContext.Log</c> (source "Ml.Cnn").</summary>
    public static void Log(IHostEnvironment? environment, string line)
    {
        if (environment is null || MessageConstructor is null) return;
        using var channel = environment.Start("Ml.Cnn");
        Send(channel, line);
    }

    private static void Send(IChannel channel, string line) =>
        channel.Send((ChannelMessage)MessageConstructor!.Invoke([ChannelMessageKind.Info, MessageSensitivity.None, line]));

    /// <summary>
    /// Progress that writes one line per epoch to <c>MLContext.Log</c> (source "Ml.Cnn") and passes every report on to
    /// <paramref name="inner"/>; the returned channel must be disposed when training ends.
    /// </summary>
    public static IProgress<TrainingProgress>? Logging(IHostEnvironment? environment, IProgress<TrainingProgress>? inner, out IDisposable? channel)
    {
        channel = null;
        if (environment is null || MessageConstructor is null) return inner;
        var ch = environment.Start("Ml.Cnn");
        channel = ch;
        return new EpochLog(ch, inner);
    }

    private sealed class EpochLog(IChannel channel, IProgress<TrainingProgress>? inner) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            inner?.Report(p);
            if (!p.EpochEnd) return;
            string accuracy = float.IsNaN(p.Accuracy) ? "" : $", accuracy {p.Accuracy:P2}";
            string validation = float.IsNaN(p.ValidationLoss) ? ""
                : $", validation loss {p.ValidationLoss:G4}" + (float.IsNaN(p.ValidationAccuracy) ? "" : $", accuracy {p.ValidationAccuracy:P2}");
            string line = $"Epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:G4}{accuracy}{validation}, rate {p.LearningRate:G3}, {p.ImagesPerSecond:F0} images/s";
            Send(channel, line);
        }
    }
}
