using System.Text;
using Ml.Cnn.Networks;
using Ml.Cnn.Optimizers;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Training;

/// <summary>
/// The training checkpoint: weights and running statistics, optimizer state, schedule and early-stopping state,
/// history, and every random generator's position — enough to resume bit-identically. Written to a temporary file,
/// flushed to disk, then renamed over the previous checkpoint, so a crash never leaves a partial file behind.
/// </summary>
internal static class Checkpoint
{
    private const string Magic = "MLCNNCKP";
    private const int Version = 2;

    public static void Save(string path, Network network, Optimizer optimizer, LearningRateSchedule schedule, RunState state)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Encoding.ASCII.GetBytes(Magic));
                writer.Write(Version);
                writer.Write(state.CompletedEpochs);
                writer.Write(optimizer.StepCount);
                WriteWords(writer, state.Random.GetState());
                writer.Write(schedule.PlateauScale);
                writer.Write(schedule.PlateauBest);
                writer.Write(schedule.PlateauWait);
                writer.Write(state.BestValidationLoss);
                writer.Write(state.BestEpoch);
                writer.Write(state.EpochsWithoutImprovement);
                writer.Write(state.StoppedEarly);
                writer.Write(state.History.Count);
                foreach (var e in state.History)
                {
                    writer.Write(e.Epoch); writer.Write(e.TrainingLoss); writer.Write(e.TrainingAccuracy);
                    writer.Write(e.ValidationLoss); writer.Write(e.ValidationAccuracy); writer.Write(e.LearningRate); writer.Write(e.Seconds);
                }
                var tensors = Tensors(network, optimizer).ToList();
                writer.Write(tensors.Count);
                foreach (var t in tensors) WriteFloats(writer, t.ToArray());
                writer.Write(state.BestWeights is null ? -1 : state.BestWeights.Count);
                foreach (var values in state.BestWeights ?? []) WriteFloats(writer, values);
                var generators = network.Generators.ToList();
                writer.Write(generators.Count);
                foreach (var g in generators) WriteWords(writer, g.GetState());
            }
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// Reads and checks the whole checkpoint first, then applies it, so a checkpoint written for another architecture
    /// fails with <see cref="InvalidDataException"/> and leaves the network, optimizer and schedule untouched.
    /// </summary>
    public static void Load(string path, Network network, Optimizer optimizer, LearningRateSchedule schedule, RunState state)
    {
        var tensors = Tensors(network, optimizer).ToList();
        var weights = network.StateTensors.ToList();
        var generators = network.Generators.ToList();
        int completedEpochs, steps, plateauWait, bestEpoch, withoutImprovement;
        float plateauScale, plateauBest, bestLoss;
        bool stoppedEarly;
        ulong[] random;
        var history = new List<EpochStatistics>();
        var values = new List<float[]>();
        List<float[]>? best;
        var generatorStates = new List<ulong[]>();
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            if (Encoding.ASCII.GetString(reader.ReadBytes(Magic.Length)) != Magic)
                throw new InvalidDataException($"'{path}' is not an Ml.Cnn checkpoint (bad magic).");
            int version = reader.ReadInt32();
            if (version != Version) throw new InvalidDataException($"Checkpoint '{path}' has version {version}; this build reads version {Version}.");
            completedEpochs = reader.ReadInt32();
            steps = reader.ReadInt32();
            random = ReadWords(reader);
            plateauScale = reader.ReadSingle();
            plateauBest = reader.ReadSingle();
            plateauWait = reader.ReadInt32();
            bestLoss = reader.ReadSingle();
            bestEpoch = reader.ReadInt32();
            withoutImprovement = reader.ReadInt32();
            stoppedEarly = reader.ReadBoolean();
            int epochs = reader.ReadInt32();
            for (int i = 0; i < epochs; i++)
                history.Add(new EpochStatistics(reader.ReadInt32(), reader.ReadSingle(), reader.ReadSingle(), reader.ReadSingle(),
                    reader.ReadSingle(), reader.ReadSingle(), reader.ReadDouble()));
            int count = reader.ReadInt32();
            if (count != tensors.Count)
                throw new InvalidDataException($"Checkpoint '{path}' holds {count} tensors but this network and optimizer have {tensors.Count}: it was written for another architecture or optimizer.");
            foreach (var t in tensors) values.Add(ReadFloats(reader, t.Length, path));
            int bestCount = reader.ReadInt32();
            if (bestCount >= 0 && bestCount != weights.Count) throw new InvalidDataException($"Checkpoint '{path}' has best weights for another architecture.");
            best = bestCount < 0 ? null : weights.Select(w => ReadFloats(reader, w.Length, path)).ToList();
            if (reader.ReadInt32() != generators.Count) throw new InvalidDataException($"Checkpoint '{path}' has generators for another architecture.");
            foreach (var _ in generators) generatorStates.Add(ReadWords(reader));
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"Checkpoint '{path}' is truncated.");
        }

        state.CompletedEpochs = completedEpochs;
        optimizer.StepCount = steps;
        state.Random.SetState(random);
        (schedule.PlateauScale, schedule.PlateauBest, schedule.PlateauWait) = (plateauScale, plateauBest, plateauWait);
        (state.BestValidationLoss, state.BestEpoch, state.EpochsWithoutImprovement, state.StoppedEarly) = (bestLoss, bestEpoch, withoutImprovement, stoppedEarly);
        state.History.Clear();
        state.History.AddRange(history);
        for (int i = 0; i < tensors.Count; i++) tensors[i].CopyFrom(values[i]);
        state.BestWeights = best;
        for (int i = 0; i < generators.Count; i++) generators[i].SetState(generatorStates[i]);
    }

    /// <summary>Network state, then each trainable parameter's optimizer state, in a fixed order.</summary>
    private static IEnumerable<Tensor> Tensors(Network network, Optimizer optimizer) =>
        network.StateTensors.Concat(optimizer.Parameters.Where(p => p.Trainable).SelectMany(optimizer.State));

    private static void WriteWords(BinaryWriter writer, ulong[] words)
    {
        foreach (var w in words) writer.Write(w);
    }

    private static ulong[] ReadWords(BinaryReader reader) => [reader.ReadUInt64(), reader.ReadUInt64(), reader.ReadUInt64(), reader.ReadUInt64()];

    private static void WriteFloats(BinaryWriter writer, float[] values)
    {
        writer.Write(values.Length);
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static float[] ReadFloats(BinaryReader reader, int expected, string path)
    {
        int length = reader.ReadInt32();
        if (length != expected) throw new InvalidDataException($"Checkpoint '{path}' has a tensor of {length} values where {expected} are expected.");
        var bytes = reader.ReadBytes(length * sizeof(float));
        if (bytes.Length != length * sizeof(float)) throw new EndOfStreamException();
        var values = new float[length];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }
}
