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

    public static void Load(string path, Network network, Optimizer optimizer, LearningRateSchedule schedule, RunState state)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            if (Encoding.ASCII.GetString(reader.ReadBytes(Magic.Length)) != Magic)
                throw new InvalidDataException($"'{path}' is not an Ml.Cnn checkpoint (bad magic).");
            int version = reader.ReadInt32();
            if (version != Version) throw new InvalidDataException($"Checkpoint '{path}' has version {version}; this build reads version {Version}.");
            state.CompletedEpochs = reader.ReadInt32();
            optimizer.StepCount = reader.ReadInt32();
            state.Random.SetState(ReadWords(reader));
            schedule.PlateauScale = reader.ReadSingle();
            schedule.PlateauBest = reader.ReadSingle();
            schedule.PlateauWait = reader.ReadInt32();
            state.BestValidationLoss = reader.ReadSingle();
            state.BestEpoch = reader.ReadInt32();
            state.EpochsWithoutImprovement = reader.ReadInt32();
            state.StoppedEarly = reader.ReadBoolean();
            int epochs = reader.ReadInt32();
            state.History.Clear();
            for (int i = 0; i < epochs; i++)
                state.History.Add(new EpochStatistics(reader.ReadInt32(), reader.ReadSingle(), reader.ReadSingle(), reader.ReadSingle(),
                    reader.ReadSingle(), reader.ReadSingle(), reader.ReadDouble()));
            var tensors = Tensors(network, optimizer).ToList();
            int count = reader.ReadInt32();
            if (count != tensors.Count)
                throw new InvalidDataException($"Checkpoint '{path}' holds {count} tensors but this network and optimizer have {tensors.Count}: it was written for another architecture or optimizer.");
            foreach (var t in tensors) t.CopyFrom(ReadFloats(reader, t.Length, path));
            int best = reader.ReadInt32();
            var weights = network.StateTensors.ToList();
            if (best >= 0 && best != weights.Count) throw new InvalidDataException($"Checkpoint '{path}' has best weights for another architecture.");
            state.BestWeights = best < 0 ? null : weights.Select(w => ReadFloats(reader, w.Length, path)).ToList();
            var generators = network.Generators.ToList();
            if (reader.ReadInt32() != generators.Count) throw new InvalidDataException($"Checkpoint '{path}' has generators for another architecture.");
            foreach (var g in generators) g.SetState(ReadWords(reader));
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"Checkpoint '{path}' is truncated.");
        }
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
