using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using Ml.Cnn.Core;
using Ml.Cnn.Networks;
using Ml.Cnn.Optimizers;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Training;

/// <summary>
/// The training checkpoint: weights and running statistics, optimizer state, schedule and early-stopping state,
/// history, every random generator's position and the fingerprint of the data and options — enough to resume
/// bit-identically, and to refuse resuming anything else. Each section ends with its CRC-32C, so a corrupt file is
/// refused naming the section. Written to a temporary file, flushed to disk, then renamed over the previous
/// checkpoint, so a crash never leaves a partial file behind.
/// </summary>
internal static class Checkpoint
{
    private const string Magic = "MLCNNCKP";
    private const int Version = 3;
    // A checkpoint holds one history entry per epoch; more than this is a corrupt count, not a run.
    private const int MaxEpochs = 1_000_000;

    /// <summary>The temporary file a save writes before renaming it over <paramref name="path"/>.</summary>
    public static string TemporaryPath(string path) => path + ".tmp";

    public static void Save(string path, Network network, Optimizer optimizer, LearningRateSchedule schedule, RunState state,
        RunFingerprint fingerprint)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string temporary = TemporaryPath(path);
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            var crc = new Crc32CStream(file);
            using (var writer = new BinaryWriter(crc, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Encoding.ASCII.GetBytes(Magic));
                writer.Write(Version);
                EndSection(writer, crc);

                writer.Write(fingerprint.Data);
                writer.Write(fingerprint.Options);
                writer.Write(state.CompletedEpochs);
                writer.Write(optimizer.StepCount);
                foreach (var w in state.Random.GetState()) writer.Write(w);
                writer.Write(schedule.PlateauScale);
                writer.Write(schedule.PlateauBest);
                writer.Write(schedule.PlateauWait);
                writer.Write(state.BestValidationLoss);
                writer.Write(state.BestEpoch);
                writer.Write(state.EpochsWithoutImprovement);
                writer.Write(state.StoppedEarly);
                EndSection(writer, crc);

                writer.Write(state.History.Count);
                foreach (var e in state.History)
                {
                    writer.Write(e.Epoch); writer.Write(e.TrainingLoss); writer.Write(e.TrainingAccuracy);
                    writer.Write(e.ValidationLoss); writer.Write(e.ValidationAccuracy); writer.Write(e.LearningRate); writer.Write(e.Seconds);
                }
                EndSection(writer, crc);

                var tensors = Tensors(network, optimizer).ToList();
                writer.Write(tensors.Count);
                // Host tensors are written from their own memory; others (device memory) through one copy each.
                foreach (var t in tensors)
                    WriteFloats(writer, t.Storage is HostStorage host ? host.Data.AsSpan(0, t.Length) : t.ToArray());
                EndSection(writer, crc);

                writer.Write(state.BestWeights is null ? -1 : state.BestWeights.Count);
                foreach (var values in state.BestWeights ?? []) WriteFloats(writer, values);
                EndSection(writer, crc);

                var generators = network.Generators.ToList();
                writer.Write(generators.Count);
                foreach (var g in generators)
                    foreach (var w in g.GetState()) writer.Write(w);
                EndSection(writer, crc);
            }
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// Reads and checks the whole checkpoint first, then applies it, so a checkpoint that is corrupt, written for
    /// another architecture, or trained on other data or options fails and leaves the network, optimizer and schedule
    /// untouched: <see cref="InvalidDataException"/> for a file that is not a sound checkpoint (naming the path and the
    /// section), <see cref="InvalidOperationException"/> for a sound one of another run.
    /// </summary>
    public static void Load(string path, Network network, Optimizer optimizer, LearningRateSchedule schedule, RunState state,
        RunFingerprint fingerprint)
    {
        var tensors = Tensors(network, optimizer).ToList();
        var weights = network.StateTensors.ToList();
        var generators = network.Generators.ToList();
        var c = Read(path, tensors, weights, generators);
        if (c.Fingerprint.Data != fingerprint.Data)
            throw new InvalidOperationException(
                $"Checkpoint '{path}' was trained on other data (another row count, shape or rows); resuming it would mix two runs. Use another checkpoint folder or delete this one.");
        if (c.Fingerprint.Options != fingerprint.Options)
            throw new InvalidOperationException(
                $"Checkpoint '{path}' was trained with other options (only Epochs may change between a run and its resume). Use another checkpoint folder or delete this one.");

        state.CompletedEpochs = c.CompletedEpochs;
        optimizer.StepCount = c.Steps;
        state.Random.SetState(c.Random);
        (schedule.PlateauScale, schedule.PlateauBest, schedule.PlateauWait) = (c.PlateauScale, c.PlateauBest, c.PlateauWait);
        (state.BestValidationLoss, state.BestEpoch, state.EpochsWithoutImprovement, state.StoppedEarly) =
            (c.BestLoss, c.BestEpoch, c.WithoutImprovement, c.StoppedEarly);
        state.History.Clear();
        state.History.AddRange(c.History);
        for (int i = 0; i < tensors.Count; i++) tensors[i].CopyFrom(c.Values[i]);
        state.BestWeights = c.Best;
        for (int i = 0; i < generators.Count; i++) generators[i].SetState(c.GeneratorStates[i]);
    }

    private sealed record Contents(RunFingerprint Fingerprint, int CompletedEpochs, int Steps, ulong[] Random, float PlateauScale,
        float PlateauBest, int PlateauWait, float BestLoss, int BestEpoch, int WithoutImprovement, bool StoppedEarly,
        List<EpochStatistics> History, List<float[]> Values, List<float[]>? Best, List<ulong[]> GeneratorStates);

    /// <summary>Reads and checks every section; nothing is applied.</summary>
    private static Contents Read(string path, List<Tensor> tensors, List<Tensor> weights, List<Rng> generators)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var crc = new Crc32CStream(file);
        using var reader = new BinaryReader(crc, Encoding.UTF8, leaveOpen: true);
        var sections = new SectionReader(path, reader, crc);
        try
        {
            sections.Begin("header");
            if (Encoding.ASCII.GetString(reader.ReadBytes(Magic.Length)) != Magic)
                throw new InvalidDataException($"'{path}' is not an Ml.Cnn checkpoint (bad magic).");
            int version = reader.ReadInt32();
            if (version != Version) throw new InvalidDataException($"Checkpoint '{path}' has version {version}; this build reads version {Version}.");
            sections.End();

            sections.Begin("run state");
            var stored = new RunFingerprint(reader.ReadUInt64(), reader.ReadUInt64());
            int completedEpochs = reader.ReadInt32(), steps = reader.ReadInt32();
            ulong[] random = [reader.ReadUInt64(), reader.ReadUInt64(), reader.ReadUInt64(), reader.ReadUInt64()];
            float plateauScale = reader.ReadSingle(), plateauBest = reader.ReadSingle();
            int plateauWait = reader.ReadInt32();
            float bestLoss = reader.ReadSingle();
            int bestEpoch = reader.ReadInt32(), withoutImprovement = reader.ReadInt32();
            bool stoppedEarly = reader.ReadBoolean();
            sections.End();
            sections.Check(completedEpochs is >= 0 and <= MaxEpochs, $"completed epochs {completedEpochs}");
            sections.Check(steps >= 0, $"optimizer step count {steps}");
            sections.Check(random.Any(w => w != 0), "an all-zero random generator state");
            sections.Check(float.IsFinite(plateauScale) && plateauScale >= 0, $"plateau scale {plateauScale}"); // 0: underflowed after many reductions
            sections.Check(!float.IsNaN(plateauBest) && plateauWait >= 0, $"plateau state {plateauBest}, {plateauWait}");
            sections.Check(!float.IsNaN(bestLoss) && bestEpoch >= 0 && bestEpoch <= completedEpochs && withoutImprovement >= 0,
                $"early-stopping state (best loss {bestLoss}, epoch {bestEpoch}, {withoutImprovement} epochs without improvement)");

            sections.Begin("history");
            int epochs = reader.ReadInt32();
            sections.Check(epochs == completedEpochs, $"{epochs} history entries for {completedEpochs} completed epochs");
            var history = new List<EpochStatistics>(Math.Min(epochs, 1024)); // grows with what is actually read
            for (int i = 0; i < epochs; i++)
                history.Add(new EpochStatistics(reader.ReadInt32(), reader.ReadSingle(), reader.ReadSingle(), reader.ReadSingle(),
                    reader.ReadSingle(), reader.ReadSingle(), reader.ReadDouble()));
            sections.End();

            sections.Begin("weights and optimizer state");
            int count = reader.ReadInt32();
            if (count != tensors.Count)
                throw new InvalidDataException($"Checkpoint '{path}' holds {count} tensors but this network and optimizer have {tensors.Count}: it was written for another architecture or optimizer.");
            var values = tensors.Select(t => ReadFloats(reader, t.Length, path)).ToList();
            sections.End();

            sections.Begin("best weights");
            int bestCount = reader.ReadInt32();
            if (bestCount >= 0 && bestCount != weights.Count) throw new InvalidDataException($"Checkpoint '{path}' has best weights for another architecture.");
            var best = bestCount < 0 ? null : weights.Select(w => ReadFloats(reader, w.Length, path)).ToList();
            sections.End();

            sections.Begin("random generators");
            if (reader.ReadInt32() != generators.Count) throw new InvalidDataException($"Checkpoint '{path}' has generators for another architecture.");
            var generatorStates = generators.Select(_ => new[] { reader.ReadUInt64(), reader.ReadUInt64(), reader.ReadUInt64(), reader.ReadUInt64() }).ToList();
            sections.End();
            if (crc.Read(new byte[1]) != 0) throw new InvalidDataException($"Checkpoint '{path}' has data past its last section.");
            return new Contents(stored, completedEpochs, steps, random, plateauScale, plateauBest, plateauWait, bestLoss, bestEpoch,
                withoutImprovement, stoppedEarly, history, values, best, generatorStates);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"Checkpoint '{path}' is truncated in section '{sections.Current}'.");
        }
    }

    /// <summary>Network state, then each trainable parameter's optimizer state, in a fixed order.</summary>
    private static IEnumerable<Tensor> Tensors(Network network, Optimizer optimizer) =>
        network.StateTensors.Concat(optimizer.Parameters.Where(p => p.Trainable).SelectMany(optimizer.State));

    private static void EndSection(BinaryWriter writer, Crc32CStream crc)
    {
        writer.Flush();
        writer.Write(crc.Value);
        writer.Flush();
        crc.Reset();
    }

    private static void WriteFloats(BinaryWriter writer, ReadOnlySpan<float> values)
    {
        writer.Write(values.Length);
        writer.Write(MemoryMarshal.AsBytes(values));
    }

    private static float[] ReadFloats(BinaryReader reader, int expected, string path)
    {
        int length = reader.ReadInt32();
        // Checked against the network before anything is allocated: a corrupt length cannot size an allocation.
        if (length != expected) throw new InvalidDataException($"Checkpoint '{path}' has a tensor of {length} values where {expected} are expected.");
        var values = new float[length];
        reader.BaseStream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    /// <summary>Names the section being read, so truncation, a failed CRC or an impossible field says where.</summary>
    private sealed class SectionReader(string path, BinaryReader reader, Crc32CStream crc)
    {
        private string _section = "";

        public void Begin(string section)
        {
            _section = section;
            crc.Reset();
        }

        public string Current => _section;

        public void End()
        {
            uint computed = crc.Value;
            uint stored = reader.ReadUInt32();
            if (stored != computed)
                throw new InvalidDataException($"Checkpoint '{path}' is corrupt: section '{_section}' fails its checksum (stored 0x{stored:X8}, computed 0x{computed:X8}).");
        }

        public void Check(bool condition, string what)
        {
            if (!condition) throw new InvalidDataException($"Checkpoint '{path}' is corrupt: section '{_section}' holds {what}.");
        }
    }
}

/// <summary>Passes reads or writes through and keeps the CRC-32C (Castagnoli) of the bytes since the last reset.</summary>
internal sealed class Crc32CStream(Stream inner) : Stream
{
    private uint _crc = uint.MaxValue;

    public uint Value => ~_crc;

    public void Reset() => _crc = uint.MaxValue;

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        Update(buffer[..n]);
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Update(buffer);
        inner.Write(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    private void Update(ReadOnlySpan<byte> bytes)
    {
        uint crc = _crc;
        var words = MemoryMarshal.Cast<byte, ulong>(bytes);
        foreach (var w in words) crc = BitOperations.Crc32C(crc, w);
        foreach (var b in bytes[(words.Length * 8)..]) crc = BitOperations.Crc32C(crc, b);
        _crc = crc;
    }

    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
