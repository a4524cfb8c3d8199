namespace Ml.Cnn.Backends.Cpu;

/// <summary>The CPU kernels' shared plumbing: running a loop on up to N threads, and per-thread scratch arrays.</summary>
internal static class CpuWork
{
    /// <summary>body(0 … count − 1) on up to <paramref name="threads"/> threads (inline for one thread or one item).</summary>
    public static void For(int count, int threads, Action<int> body)
    {
        if (threads <= 1 || count == 1)
            for (int i = 0; i < count; i++) body(i);
        else
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
    }

    /// <summary>
    /// A [ThreadStatic] slot's array, grown when too short and kept between calls: allocating large scratch per call
    /// costs more than the work and leaves large-object-heap garbage every training step. Contents are undefined.
    /// </summary>
    public static float[] Scratch(ref float[]? slot, long length)
    {
        if (slot is null || slot.Length < length) slot = GC.AllocateUninitializedArray<float>(checked((int)length));
        return slot;
    }
}
