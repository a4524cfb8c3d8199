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
    /// Σ over a batch's images of each image's contribution, the same whatever the thread count: images go to fixed
    /// groups of <paramref name="imagesPerTask"/>, a task adds its images in order into its own zeroed run of
    /// <paramref name="length"/> floats (accumulate(image, sums, offset of the run)), and the runs are added in task
    /// order into the first, which holds the total on return.
    /// </summary>
    public static float[] SumOverImages(int batch, int imagesPerTask, int length, int threads, ref float[]? slot, Action<int, float[], int> accumulate)
    {
        int tasks = (batch + imagesPerTask - 1) / imagesPerTask;
        var sums = Scratch(ref slot, (long)tasks * length);
        For(tasks, threads, task =>
        {
            sums.AsSpan(task * length, length).Clear();
            for (int n = task * imagesPerTask; n < Math.Min(batch, (task + 1) * imagesPerTask); n++) accumulate(n, sums, task * length);
        });
        for (int task = 1; task < tasks; task++) Pointwise.AddInto(sums.AsSpan(0, length), sums.AsSpan(task * length, length));
        return sums;
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
