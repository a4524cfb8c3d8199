using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Gpu.Kernels;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Gpu;

/// <summary>
/// <see cref="IBackend"/> on an ILGPU accelerator: a CUDA device, or ILGPU's CPU accelerator, which runs the same
/// kernels and is how CI (no GPU) tests them. Tensors live in device memory; only loss values and explicit
/// <see cref="Tensor.ToArray"/> calls come back to the host. Every operation has a kernel; any can still be sent to the
/// host through an explicit, counted fallback (<see cref="Fallbacks"/>), which is how a new operation comes up and how
/// a test proves a network runs without one. Same seed, same device and same group size: the same model (no float
/// atomics; every sum runs in a fixed order). One backend is one stream with its own scratch buffers: use it from one
/// thread at a time, as a CUDA stream.
/// </summary>
/// <remarks>
/// Matrix products use a tiled ILGPU SGEMM (one thread per element on the CPU accelerator); convolutions are im2col +
/// that SGEMM, over chunks of the batch. Not written yet: cuBLAS and cuDNN, device-resident loss values (each loss
/// reads its terms back, one synchronisation per call), double-buffered uploads of input batches.
/// </remarks>
public sealed class GpuBackend : IBackend, IDisposable
{
    // A convolution's im2col matrix is built for as many images as fit in this many floats (one at least).
    private const long ConvScratchFloats = 1L << 25;
    // Slices of a sum of squares, added on the host in order.
    private const int SquareSlices = 64;

    private readonly Context _context;
    private readonly CpuBackend _host = new(1);
    private readonly Dictionary<string, int> _fallbacks = [];
    private readonly Dictionary<string, MemoryBuffer1D<float, Stride1D.Dense>> _scratch = [];
    private MemoryBuffer1D<double, Stride1D.Dense>? _terms;
    private readonly int _tile, _group;
    private long _deviceBytes;

    private readonly CuBlas? _blas;

    private GpuBackend(Context context, Accelerator accelerator)
    {
        _context = context;
        Accelerator = accelerator;
        if (accelerator is CudaAccelerator cuda)
        {
            _blas = CuBlas.TryLoad((CudaStream)cuda.DefaultStream, out var report);
            GemmLibrary = _blas is null ? $"tiled ILGPU SGEMM: {report}" : report;
        }
        else GemmLibrary = "ILGPU SGEMM kernels (no cuBLAS on this accelerator)";
        int maxGroup = Math.Min(accelerator.MaxNumThreadsPerGroup, ReductionKernels.MaxGroup);
        _group = 1 << (int)Math.Log2(maxGroup);
        _tile = (int)Math.Sqrt(Math.Min(accelerator.MaxNumThreadsPerGroup, GemmKernels.MaxTile * GemmKernels.MaxTile));
        _tile = 1 << (int)Math.Log2(_tile);
        TiledGemm = accelerator.AcceleratorType != AcceleratorType.CPU;
    }

    /// <summary>
    /// The CUDA device <paramref name="deviceId"/>. Throws <see cref="GpuUnavailableException"/> saying what was looked
    /// for and what was found when the NVIDIA driver or the device is missing.
    /// </summary>
    public static GpuBackend Cuda(int deviceId = 0)
    {
        if (deviceId < 0) throw new ArgumentOutOfRangeException(nameof(deviceId), deviceId, "A CUDA device id is 0 or more.");
        if (!NativeLibrary.TryLoad(OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1", out var driver))
            throw new GpuUnavailableException($"CUDA device {deviceId} was asked for, but the NVIDIA driver " +
                $"({(OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1")}) is not installed on this machine.");
        NativeLibrary.Free(driver);
        var context = Context.Create(builder => builder.Cuda().Optimize(OptimizationLevel.O1));
        var devices = new List<CudaDevice>();
        foreach (var device in context.GetCudaDevices()) devices.Add(device);
        if (deviceId >= devices.Count)
        {
            context.Dispose();
            throw new GpuUnavailableException($"CUDA device {deviceId} was asked for; the driver reports {devices.Count} " +
                $"device(s){(devices.Count == 0 ? "" : ": " + string.Join(", ", devices.Select((d, i) => $"{i} {d.Name}").ToList()))}.");
        }
        return new GpuBackend(context, devices[deviceId].CreateAccelerator(context));
    }

    /// <summary>ILGPU's CPU accelerator: the GPU kernels run on the host's threads (tests, and machines without a GPU).</summary>
    public static GpuBackend CpuAccelerator() => CpuAccelerator(CPUAcceleratorMode.Auto, new CPUDevice(2, 1, 2));

    /// <summary>
    /// The CPU accelerator on a simulated <paramref name="device"/> (ILGPU's default of 4 warps of 4 threads when null).
    /// Every simulated thread of a group is an OS thread, so groups of 2 run networks about 14 times faster than the
    /// default's 16 on two cores; the wider groups still have their use, exercising the reduction trees' deeper levels.
    /// </summary>
    internal static GpuBackend CpuAccelerator(CPUAcceleratorMode mode, CPUDevice? device)
    {
        var context = Context.Create(builder => (device is null ? builder.CPU() : builder.CPU(device)).Optimize(OptimizationLevel.O1));
        return new GpuBackend(context, context.CreateCPUAccelerator(0, mode));
    }

    /// <summary>
    /// Whether products use the shared-memory tiled kernel (the default on a GPU) or one thread per element (the default
    /// on the CPU accelerator, where group barriers are slow). Both give the same bits.
    /// </summary>
    internal bool TiledGemm { get; set; }

    /// <summary>What computes the matrix products: cuBLAS (and from which file) or the ILGPU kernels, and why.</summary>
    public string GemmLibrary { get; }

    /// <summary>The ILGPU accelerator the kernels run on.</summary>
    public Accelerator Accelerator { get; }

    /// <inheritdoc />
    public string Name => $"gpu({Accelerator.AcceleratorType}: {Accelerator.Name})";

    /// <summary>
    /// How often each operation has run on the host through the fallback, by operation name. Empty when
    /// a network ran entirely on the device.
    /// </summary>
    public IReadOnlyDictionary<string, int> Fallbacks => _fallbacks;

    /// <summary>Bytes of device memory held by live tensors and scratch buffers now.</summary>
    public long DeviceMemoryInUse => Interlocked.Read(ref _deviceBytes);

    /// <summary>Bytes of <see cref="DeviceMemoryInUse"/> that are the backend's own reusable scratch, not tensors.</summary>
    internal long ScratchMemoryInUse =>
        _scratch.Values.Concat(_taps.Values).Sum(b => b.LengthInBytes) + (_terms?.LengthInBytes ?? 0);

    internal void CountAllocation(long bytes) => Interlocked.Add(ref _deviceBytes, bytes);

    /// <summary>
    /// Reads from the device to the host so far (tensor downloads and reduction results): each waits for the device
    /// to finish its queue. Training reads one window of losses and counts every few batches, not per batch.
    /// </summary>
    public long HostReads => Interlocked.Read(ref _hostReads);

    private long _hostReads;

    internal void CountRead() => Interlocked.Increment(ref _hostReads);

    /// <summary>Waits until every queued kernel has finished.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <inheritdoc />
    public Tensor Allocate(TensorShape shape) => new(this, new DeviceStorage(this, shape.Length), shape);

    /// <summary>Releases the scratch buffers and the accelerator; tensors of this backend are unusable afterwards.</summary>
    public void Dispose()
    {
        foreach (var buffer in _scratch.Values.Concat(_taps.Values)) buffer.Dispose();
        _scratch.Clear();
        _taps.Clear();
        _terms?.Dispose();
        _blas?.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }

    // ---- memory ----

    private ArrayView<float> V(Tensor t) => t.Storage is DeviceStorage d && d.Owner == this
        ? d.View(t.Length)
        : throw new ArgumentException($"Tensor {t.Shape} lives on {t.Backend.Name}, not on {Name}.");

    // A zero-length view where an optional tensor is absent (kernels read it only when told it is there).
    private ArrayView<float> VOrEmpty(Tensor? t) => t is null ? Scratch("empty", 1) : V(t);

    /// <summary>A device buffer for <paramref name="role"/> of at least <paramref name="length"/> floats, reused.</summary>
    private ArrayView<float> Scratch(string role, long length)
    {
        if (!_scratch.TryGetValue(role, out var buffer) || buffer.Length < length)
        {
            if (buffer is not null) { CountAllocation(-buffer.LengthInBytes); buffer.Dispose(); }
            buffer = _scratch[role] = Accelerator.Allocate1D<float>(Math.Max(length, 1));
            CountAllocation(buffer.LengthInBytes);
        }
        return buffer.View.SubView(0, Math.Max(length, 1));
    }

    private ArrayView<double> Terms(int length)
    {
        if (_terms is null || _terms.Length < length)
        {
            if (_terms is not null) { CountAllocation(-_terms.LengthInBytes); _terms.Dispose(); }
            _terms = Accelerator.Allocate1D<double>(Math.Max(length, 1));
            CountAllocation(_terms.LengthInBytes);
        }
        return _terms.View.SubView(0, Math.Max(length, 1));
    }

    private double[] _hostTerms = [];

    /// <summary>The first <paramref name="length"/> terms, read into a host array reused across calls.</summary>
    private ReadOnlySpan<double> ReadTerms(int length)
    {
        if (length == 0) return [];
        if (_hostTerms.Length < length) _hostTerms = new double[length];
        var values = _hostTerms.AsSpan(0, length);
        CountRead();
        Terms(length).SubView(0, length).CopyToCPU(values);
        return values;
    }

    // ---- the host fallback ----

    private T OnHost<T>(string operation, Func<Func<Tensor, Tensor>, T> run, params Tensor?[] written)
    {
        _fallbacks[operation] = _fallbacks.GetValueOrDefault(operation) + 1;
        var copies = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        Tensor Host(Tensor t)
        {
            if (copies.TryGetValue(t, out var h)) return h;
            h = _host.Allocate(t.Shape);
            h.CopyFrom(t.ToArray());
            return copies[t] = h;
        }
        T result = run(Host);
        foreach (var t in written)
            if (t is not null) t.CopyFrom(Host(t).ToArray());
        return result;
    }

    private void OnHost(string operation, Action<Func<Tensor, Tensor>> run, params Tensor?[] written) =>
        OnHost(operation, host => { run(host); return 0; }, written);

    // ---- kernel loading: each kernel compiles on first use ----

    private readonly Dictionary<Delegate, Delegate> _kernels = [];

    private Action<Index1D, T1, T2> K<T1, T2>(Action<Index1D, T1, T2> kernel)
        where T1 : struct where T2 : struct =>
        (Action<Index1D, T1, T2>)Cached(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));

    private Action<Index1D, T1, T2, T3> K<T1, T2, T3>(Action<Index1D, T1, T2, T3> kernel)
        where T1 : struct where T2 : struct where T3 : struct =>
        (Action<Index1D, T1, T2, T3>)Cached(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));

    private Action<Index1D, T1, T2, T3, T4> K<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct =>
        (Action<Index1D, T1, T2, T3, T4>)Cached(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));

    private Action<Index1D, T1, T2, T3, T4, T5> K<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        (Action<Index1D, T1, T2, T3, T4, T5>)Cached(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));

    private Action<Index1D, T1, T2, T3, T4, T5, T6> K<T1, T2, T3, T4, T5, T6>(Action<Index1D, T1, T2, T3, T4, T5, T6> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct =>
        (Action<Index1D, T1, T2, T3, T4, T5, T6>)Cached(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));

    private Action<Index1D, T1, T2, T3, T4, T5, T6, T7> K<T1, T2, T3, T4, T5, T6, T7>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct =>
        (Action<Index1D, T1, T2, T3, T4, T5, T6, T7>)Cached(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));

    private Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> K<T1, T2, T3, T4, T5, T6, T7, T8>(
        Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct where T8 : struct =>
        (Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8>)Cached(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));

    private Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9> K<T1, T2, T3, T4, T5, T6, T7, T8, T9>(
        Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct where T8 : struct where T9 : struct =>
        (Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9>)Cached(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));

    private Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> K<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(
        Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct where T8 : struct where T9 : struct where T10 : struct =>
        (Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>)Cached(kernel, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));

    private Delegate Cached(Delegate kernel, Func<Delegate> load)
    {
        // Keyed by the kernel method, not the delegate instance (method groups make a new delegate per use).
        foreach (var (key, loaded) in _kernels)
            if (key.Method == kernel.Method) return loaded;
        return _kernels[kernel] = load();
    }

    private Action<KernelConfig, T1, T2, T3> Grouped<T1, T2, T3>(Action<T1, T2, T3> kernel)
        where T1 : struct where T2 : struct where T3 : struct =>
        (Action<KernelConfig, T1, T2, T3>)Cached(kernel, () => Accelerator.LoadStreamKernel(kernel));

    private Action<KernelConfig, T1, T2, T3, T4> Grouped<T1, T2, T3, T4>(Action<T1, T2, T3, T4> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct =>
        (Action<KernelConfig, T1, T2, T3, T4>)Cached(kernel, () => Accelerator.LoadStreamKernel(kernel));

    private Action<KernelConfig, T1, T2, T3, T4, T5> Grouped<T1, T2, T3, T4, T5>(Action<T1, T2, T3, T4, T5> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        (Action<KernelConfig, T1, T2, T3, T4, T5>)Cached(kernel, () => Accelerator.LoadStreamKernel(kernel));

    private Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7> Grouped<T1, T2, T3, T4, T5, T6, T7>(Action<T1, T2, T3, T4, T5, T6, T7> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct =>
        (Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7>)Cached(kernel, () => Accelerator.LoadStreamKernel(kernel));

    private Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8> Grouped<T1, T2, T3, T4, T5, T6, T7, T8>(
        Action<T1, T2, T3, T4, T5, T6, T7, T8> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
        where T7 : struct where T8 : struct =>
        (Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8>)Cached(kernel, () => Accelerator.LoadStreamKernel(kernel));

    // One group of _group threads per channel.
    private KernelConfig PerChannel(int channels) => new(new Index1D(channels), new Index1D(_group));

    private static ChannelArgs ChannelsOf(Tensor x) =>
        new() { Items = x.Shape.N, Channels = x.Shape[1], Plane = x.Shape.ItemLength / x.Shape[1] };

    // ---- elementwise and data movement ----

    /// <inheritdoc />
    public void Fill(Tensor t, float value)
    {
        if (t.Length > 0) K<ArrayView<float>, float>(ElementwiseKernels.Fill)(t.Length, V(t), value);
    }

    /// <inheritdoc />
    public void Copy(Tensor src, Tensor dst)
    {
        if (src.Length > 0) V(src).CopyTo(V(dst));
    }

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor y)
    {
        if (y.Length > 0) K<ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Add)(y.Length, V(a), V(b), V(y));
    }

    /// <inheritdoc />
    public void Axpy(float alpha, Tensor x, Tensor y)
    {
        if (y.Length > 0) K<float, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Axpy)(y.Length, alpha, V(x), V(y));
    }

    /// <inheritdoc />
    public void Scale(Tensor t, float factor)
    {
        if (t.Length > 0) K<ArrayView<float>, float>(ElementwiseKernels.Scale)(t.Length, V(t), factor);
    }

    /// <inheritdoc />
    public double SumOfSquares(Tensor t) => SumOfSquares([t]);

    /// <inheritdoc />
    public double SumOfSquares(IReadOnlyList<Tensor> tensors)
    {
        var terms = Terms(SquareSlices * tensors.Count);
        for (int i = 0; i < tensors.Count; i++)
            if (tensors[i].Length > 0)
                Grouped<ArrayView<float>, ArrayView<double>, int>(ReductionKernels.SumOfSquares)(
                    new KernelConfig(new Index1D(SquareSlices), new Index1D(_group)), V(tensors[i]),
                    terms.SubView(i * SquareSlices, SquareSlices), tensors[i].Length);
        var values = ReadTerms(SquareSlices * tensors.Count);
        double sum = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            if (tensors[i].Length == 0) continue;
            double own = 0;
            foreach (var v in values.Slice(i * SquareSlices, SquareSlices)) own += v;
            sum += own;
        }
        return sum;
    }

    /// <inheritdoc />
    public void CopyChannels(Tensor src, int srcChannelOffset, Tensor dst, int dstChannelOffset, int channels)
    {
        int plane = src.Shape.ItemLength / src.Shape[1], count = src.Shape.N * channels * plane;
        if (count == 0) return;
        var args = new ChannelCopy
        {
            Plane = plane, Channels = channels, SrcChannels = src.Shape[1], SrcOffset = srcChannelOffset,
            DstChannels = dst.Shape[1], DstOffset = dstChannelOffset,
        };
        K<ArrayView<float>, ArrayView<float>, ChannelCopy>(ElementwiseKernels.CopyChannels)(count, V(src), V(dst), args);
    }

    /// <inheritdoc />
    public void CopyWindow(Tensor src, int srcY, int srcX, Tensor dst, int dstY, int dstX, int height, int width)
    {
        int count = src.Shape.N * src.Shape[1] * height * width;
        if (count == 0) return;
        var args = new WindowCopy
        {
            Width = width, Height = height, SrcH = src.Shape[2], SrcW = src.Shape[3], SrcY = srcY, SrcX = srcX,
            DstH = dst.Shape[2], DstW = dst.Shape[3], DstY = dstY, DstX = dstX,
        };
        K<ArrayView<float>, ArrayView<float>, WindowCopy>(ElementwiseKernels.CopyWindow)(count, V(src), V(dst), args);
    }

    /// <inheritdoc />
    public void AddChannelBias(Tensor bias, Tensor y)
    {
        if (y.Length == 0) return;
        int channels = y.Shape[1];
        K<ArrayView<float>, ArrayView<float>, int, int>(ElementwiseKernels.AddChannelBias)(
            y.Length, V(bias), V(y), channels, y.Shape.ItemLength / channels);
    }

    /// <inheritdoc />
    public void ChannelSums(Tensor x, Tensor sums)
    {
        if (sums.Length == 0) return;
        Grouped<ArrayView<float>, ArrayView<float>, ChannelArgs>(ReductionKernels.ChannelSums)(
            PerChannel(sums.Length), V(x), V(sums), ChannelsOf(x));
    }

    // ---- matrix products ----

    /// <inheritdoc />
    public void MatMul(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        if (a.Shape.Rank != 2 || b.Shape.Rank != 2 || c.Shape.Rank != 2)
            throw new ArgumentException($"MatMul needs matrices, got A {a.Shape}, B {b.Shape}, C {c.Shape}.");
        int m = transposeA ? a.Shape[1] : a.Shape[0], k = transposeA ? a.Shape[0] : a.Shape[1];
        int kb = transposeB ? b.Shape[1] : b.Shape[0], n = transposeB ? b.Shape[0] : b.Shape[1];
        if (k != kb || c.Shape[0] != m || c.Shape[1] != n)
            throw new ArgumentException($"MatMul shapes do not agree: op(A) is [{m}, {k}], op(B) is [{kb}, {n}], C is {c.Shape}.");
        Gemm(m, n, k, V(a), transposeA, V(b), transposeB, V(c), alpha, beta, 1, 0, 0, 0);
    }

    /// <summary>
    /// <paramref name="batch"/> products C_i ← α·op(A_i)·op(B_i) + β·C_i, the i-th operands starting i strides in.
    /// </summary>
    private void Gemm(int m, int n, int k, ArrayView<float> a, bool transposeA, ArrayView<float> b, bool transposeB,
        ArrayView<float> c, float alpha, float beta, int batch, long strideA, long strideB, long strideC)
    {
        if (m == 0 || n == 0) return;
        if (_blas is not null)
        {
            _blas.Gemm(m, n, k, a, transposeA, b, transposeB, c, alpha, beta, batch, strideA, strideB, strideC);
            return;
        }
        var args = new GemmArgs
        {
            M = m, N = n, K = k, TransposeA = transposeA ? 1 : 0, TransposeB = transposeB ? 1 : 0, Alpha = alpha, Beta = beta,
            StrideA = strideA, StrideB = strideB, StrideC = strideC,
        };
        if (!TiledGemm)
        {
            var perElement = (Action<Index3D, GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>)Cached(
                (Action<Index3D, GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>)GemmKernels.GemmPerElement,
                () => Accelerator.LoadAutoGroupedStreamKernel<Index3D, GemmArgs, ArrayView<float>, ArrayView<float>,
                    ArrayView<float>>(GemmKernels.GemmPerElement));
            perElement(new Index3D(n, m, batch), args, a, b, c);
            return;
        }
        var config = new KernelConfig(new Index3D((n + _tile - 1) / _tile, (m + _tile - 1) / _tile, batch), new Index3D(_tile, _tile, 1));
        Grouped<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(GemmKernels.Gemm)(config, args, a, b, c);
    }

    /// <inheritdoc />
    public void DenseForward(Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        int rows = x.Shape.N, inputs = x.Shape.ItemLength, outputs = w.Shape[0];
        Gemm(rows, outputs, inputs, V(x), false, V(w), true, V(y), 1, 0, 1, 0, 0, 0);
        if (b is not null && y.Length > 0)
            K<ArrayView<float>, ArrayView<float>, int>(GemmKernels.AddRowBias)(y.Length, V(b), V(y), outputs);
    }

    /// <inheritdoc />
    public void DenseBackward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db)
    {
        int rows = x.Shape.N, inputs = x.Shape.ItemLength, outputs = w.Shape[0];
        if (dx is not null) Gemm(rows, inputs, outputs, V(dy), false, V(w), false, V(dx), 1, 0, 1, 0, 0, 0);
        Gemm(outputs, inputs, rows, V(dy), true, V(x), false, V(dw), 1, 0, 1, 0, 0, 0);
        if (db is not null && outputs > 0)
            K<ArrayView<float>, ArrayView<float>, int, int, int>(GemmKernels.ColumnSums)(outputs, V(dy), V(db), rows, outputs, 0);
    }

    // ---- convolution: im2col + GEMM per chunk of images, one GEMM per group ----

    private static ConvArgs ArgsOf(in ConvGeometry g) => new()
    {
        InChannels = g.InChannels, InH = g.InH, InW = g.InW, OutChannels = g.OutChannels, OutH = g.OutH, OutW = g.OutW,
        KernelH = g.KernelH, KernelW = g.KernelW, StrideH = g.StrideH, StrideW = g.StrideW, PadH = g.PadH, PadW = g.PadW,
        DilationH = g.DilationH, DilationW = g.DilationW,
    };

    /// <summary>The chunks of images whose im2col matrix fits the scratch budget.</summary>
    private static IEnumerable<(int First, int Items)> Chunks(in ConvGeometry g)
    {
        long perItem = (long)Math.Max(g.InChannels * g.KernelH * g.KernelW, g.OutChannels) * g.OutH * g.OutW;
        int chunk = (int)Math.Clamp(ConvScratchFloats / Math.Max(perItem, 1), 1, Math.Max(g.Batch, 1));
        var list = new List<(int, int)>();
        for (int first = 0; first < g.Batch; first += chunk) list.Add((first, Math.Min(chunk, g.Batch - first)));
        return list;
    }

    private void Im2Col(Tensor x, ArrayView<float> col, ConvArgs args)
    {
        long count = (long)args.InChannels * args.KernelH * args.KernelW * args.Items * args.OutH * args.OutW;
        if (count > 0) K<ArrayView<float>, ArrayView<float>, ConvArgs>(ConvolutionKernels.Im2Col)((int)count, V(x), col, args);
    }

    private void Transpose(Tensor nchw, ArrayView<float> channelMajor, Tensor? bias, ConvArgs args, bool toChannelMajor)
    {
        long count = (long)args.OutChannels * args.Items * args.OutH * args.OutW;
        if (count > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs, int, int>(ConvolutionKernels.Transpose)(
                (int)count, V(nchw), channelMajor, VOrEmpty(bias), args, toChannelMajor ? 1 : 0, bias is null ? 0 : 1);
    }

    /// <inheritdoc />
    public void ConvForward(in ConvGeometry g, Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        int patch = g.PatchSize, groupOut = g.GroupOutChannels;
        foreach (var (first, items) in Chunks(g))
        {
            var args = ArgsOf(g) with { FirstItem = first, Items = items };
            long columns = (long)items * g.OutH * g.OutW;
            var col = Scratch("col", g.InChannels * g.KernelH * g.KernelW * columns);
            var product = Scratch("channel-major", g.OutChannels * columns);
            Im2Col(x, col, args);
            Gemm(groupOut, (int)columns, patch, V(w), false, col, false, product, 1, 0, g.Groups,
                (long)groupOut * patch, patch * columns, groupOut * columns);
            Transpose(y, product, b, args, toChannelMajor: false);
        }
    }

    /// <inheritdoc />
    public void ConvBackwardData(in ConvGeometry g, Tensor dy, Tensor w, Tensor dx)
    {
        int patch = g.PatchSize, groupOut = g.GroupOutChannels;
        foreach (var (first, items) in Chunks(g))
        {
            var args = ArgsOf(g) with { FirstItem = first, Items = items };
            long columns = (long)items * g.OutH * g.OutW;
            var col = Scratch("col", g.InChannels * g.KernelH * g.KernelW * columns);
            var gradient = Scratch("channel-major", g.OutChannels * columns);
            Transpose(dy, gradient, null, args, toChannelMajor: true);
            Gemm(patch, (int)columns, groupOut, V(w), true, gradient, false, col, 1, 0, g.Groups,
                (long)groupOut * patch, groupOut * columns, patch * columns);
            int count = items * g.InChannels * g.InH * g.InW;
            if (count > 0) K<ArrayView<float>, ArrayView<float>, ConvArgs>(ConvolutionKernels.Col2Im)(count, col, V(dx), args);
        }
    }

    /// <inheritdoc />
    public void ConvBackwardWeights(in ConvGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? db)
    {
        int patch = g.PatchSize, groupOut = g.GroupOutChannels;
        bool firstChunk = true;
        foreach (var (first, items) in Chunks(g))
        {
            var args = ArgsOf(g) with { FirstItem = first, Items = items };
            long columns = (long)items * g.OutH * g.OutW;
            var col = Scratch("col", g.InChannels * g.KernelH * g.KernelW * columns);
            var gradient = Scratch("channel-major", g.OutChannels * columns);
            Im2Col(x, col, args);
            Transpose(dy, gradient, null, args, toChannelMajor: true);
            Gemm(groupOut, patch, (int)columns, gradient, false, col, true, V(dw), 1, firstChunk ? 0 : 1, g.Groups,
                groupOut * columns, patch * columns, (long)groupOut * patch);
            if (db is not null && g.OutChannels > 0)
                K<ArrayView<float>, ArrayView<float>, int, int>(GemmKernels.RowSums)(
                    g.OutChannels, gradient, V(db), (int)columns, firstChunk ? 0 : 1);
            firstChunk = false;
        }
        if (firstChunk)
        {
            Fill(dw, 0);
            if (db is not null) Fill(db, 0);
        }
    }

    // ---- pooling ----

    private static PoolArgs ArgsOf(in PoolGeometry g) => new()
    {
        InH = g.InH, InW = g.InW, OutH = g.OutH, OutW = g.OutW, KernelH = g.KernelH, KernelW = g.KernelW,
        StrideH = g.StrideH, StrideW = g.StrideW, PadH = g.PadH, PadW = g.PadW, CountIncludePad = g.CountIncludePad ? 1 : 0,
    };

    /// <inheritdoc />
    public void MaxPoolForward(in PoolGeometry g, Tensor x, Tensor y)
    {
        if (y.Length > 0) K<ArrayView<float>, ArrayView<float>, PoolArgs>(PoolingKernels.MaxForward)(y.Length, V(x), V(y), ArgsOf(g));
    }

    /// <inheritdoc />
    public void MaxPoolBackward(in PoolGeometry g, Tensor x, Tensor dy, Tensor dx)
    {
        if (dx.Length > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, PoolArgs>(PoolingKernels.MaxBackward)(
                dx.Length, V(x), V(dy), V(dx), ArgsOf(g));
    }

    /// <inheritdoc />
    public void AvgPoolForward(in PoolGeometry g, Tensor x, Tensor y)
    {
        if (y.Length > 0) K<ArrayView<float>, ArrayView<float>, PoolArgs>(PoolingKernels.AvgForward)(y.Length, V(x), V(y), ArgsOf(g));
    }

    /// <inheritdoc />
    public void AvgPoolBackward(in PoolGeometry g, Tensor dy, Tensor dx)
    {
        if (dx.Length > 0)
            K<ArrayView<float>, ArrayView<float>, PoolArgs>(PoolingKernels.AvgBackward)(dx.Length, V(dy), V(dx), ArgsOf(g));
    }

    /// <inheritdoc />
    public void GlobalAvgPoolForward(Tensor x, Tensor y)
    {
        if (y.Length > 0)
            K<ArrayView<float>, ArrayView<float>, int>(PoolingKernels.GlobalAvgForward)(y.Length, V(x), V(y), x.Length / y.Length);
    }

    /// <inheritdoc />
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        if (dx.Length > 0)
            K<ArrayView<float>, ArrayView<float>, int>(PoolingKernels.GlobalAvgBackward)(dx.Length, V(dy), V(dx), dx.Length / dy.Length);
    }

    // ---- resampling ----

    private readonly Dictionary<(UpsampleMode, int, int), MemoryBuffer1D<float, Stride1D.Dense>> _taps = [];

    /// <summary>
    /// One axis's taps on the device, made once per (mode, input, output) length: (i₀, i₁, λ) per output index, then
    /// the first and last output index that reads each input index.
    /// </summary>
    private (ArrayView<float> Taps, ArrayView<float> Ranges) AxisTaps(UpsampleMode mode, int inSize, int outSize)
    {
        if (!_taps.TryGetValue((mode, inSize, outSize), out var buffer))
        {
            var taps = mode == UpsampleMode.Nearest ? Interpolation.NearestTaps(inSize, outSize) : Interpolation.BilinearTaps(inSize, outSize);
            var table = new float[3 * outSize + 2 * inSize];
            for (int i = 0; i < inSize; i++) (table[3 * outSize + 2 * i], table[3 * outSize + 2 * i + 1]) = (outSize, -1);
            for (int o = 0; o < outSize; o++)
            {
                var (i0, i1, lambda) = taps[o];
                (table[3 * o], table[3 * o + 1], table[3 * o + 2]) = (i0, i1, lambda);
                foreach (int i in (ReadOnlySpan<int>)[i0, i1])
                {
                    ref float first = ref table[3 * outSize + 2 * i];
                    ref float last = ref table[3 * outSize + 2 * i + 1];
                    (first, last) = (Math.Min(first, o), Math.Max(last, o));
                }
            }
            buffer = _taps[(mode, inSize, outSize)] = Accelerator.Allocate1D(table);
            CountAllocation(buffer.LengthInBytes);
        }
        return (buffer.View.SubView(0, 3 * outSize), buffer.View.SubView(3 * outSize, 2 * inSize));
    }

    /// <summary>
    /// Operations forced through the host fallback although they have kernels: a kernel can be compared against the
    /// host's arithmetic, and a test can see the fallback counted.
    /// </summary>
    internal HashSet<string> HostOperations { get; } = [];

    /// <inheritdoc />
    public void UpsampleForward(UpsampleMode mode, Tensor x, Tensor y)
    {
        if (HostOperations.Contains(nameof(UpsampleForward)))
        {
            OnHost(nameof(UpsampleForward), h => _host.UpsampleForward(mode, h(x), h(y)), y);
            return;
        }
        if (y.Length == 0) return;
        var g = new ResampleArgs { InH = x.Shape[2], InW = x.Shape[3], OutH = y.Shape[2], OutW = y.Shape[3] };
        int planes = x.Shape.N * x.Shape[1];
        var rows = Scratch("resampled rows", (long)planes * g.InH * g.OutW);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ResampleArgs>(ResamplingKernels.RowsForward)(
            planes * g.InH * g.OutW, V(x), rows, AxisTaps(mode, g.InW, g.OutW).Taps, g);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ResampleArgs>(ResamplingKernels.ColumnsForward)(
            y.Length, rows, V(y), AxisTaps(mode, g.InH, g.OutH).Taps, g);
    }

    /// <inheritdoc />
    public void UpsampleBackward(UpsampleMode mode, Tensor dy, Tensor dx)
    {
        if (HostOperations.Contains(nameof(UpsampleBackward)))
        {
            OnHost(nameof(UpsampleBackward), h => _host.UpsampleBackward(mode, h(dy), h(dx)), dx);
            return;
        }
        if (dx.Length == 0) return;
        var g = new ResampleArgs { InH = dx.Shape[2], InW = dx.Shape[3], OutH = dy.Shape[2], OutW = dy.Shape[3] };
        int planes = dx.Shape.N * dx.Shape[1];
        var rows = Scratch("resampled rows", (long)planes * g.InH * g.OutW);
        var (rowTaps, rowRanges) = AxisTaps(mode, g.InH, g.OutH);
        var (columnTaps, columnRanges) = AxisTaps(mode, g.InW, g.OutW);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ResampleArgs>(ResamplingKernels.ColumnsBackward)(
            planes * g.InH * g.OutW, V(dy), rows, rowTaps, rowRanges, g);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ResampleArgs>(ResamplingKernels.RowsBackward)(
            dx.Length, rows, V(dx), columnTaps, columnRanges, g);
    }

    // ---- pointwise nonlinearities and dropout ----

    /// <inheritdoc />
    public void ActivationForward(ActivationKind kind, float alpha, float beta, Tensor x, Tensor y)
    {
        if (y.Length > 0)
            K<ArrayView<float>, ArrayView<float>, int, float, float>(ElementwiseKernels.Activation)(
                y.Length, V(x), V(y), (int)kind, alpha, beta);
    }

    /// <inheritdoc />
    public void ActivationBackward(ActivationKind kind, float alpha, float beta, Tensor x, Tensor y, Tensor dy, Tensor dx)
    {
        if (dx.Length > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float>(ElementwiseKernels.ActivationGradient)(
                dx.Length, V(x), V(y), V(dy), V(dx), (int)kind, alpha, beta);
    }

    /// <inheritdoc />
    public void Multiply(Tensor a, Tensor b, Tensor y)
    {
        if (y.Length > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.Multiply)(
                y.Length, V(a), V(b), V(y), a.Length / b.Length);
    }

    /// <inheritdoc />
    public void MultiplyBackward(Tensor a, Tensor b, Tensor dy, Tensor da, Tensor db)
    {
        if (a.Length == 0) return;
        int plane = a.Length / b.Length;
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.Multiply)(da.Length, V(dy), V(b), V(da), plane);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ReductionKernels.PlaneDot)(db.Length, V(dy), V(a), V(db), plane);
    }

    /// <inheritdoc />
    public void DropoutForward(Tensor x, Tensor y, float p, ulong seed)
    {
        if (y.Length > 0)
            K<ArrayView<float>, ArrayView<float>, float, ulong>(ElementwiseKernels.Dropout)(y.Length, V(x), V(y), p, seed);
    }

    /// <inheritdoc />
    public void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed) => DropoutForward(dy, dx, p, seed);

    // ---- normalization ----

    private void Normalize(Tensor x, Tensor mean, Tensor invStd, Tensor gamma, Tensor beta, Tensor y)
    {
        if (y.Length == 0) return;
        var a = ChannelsOf(x);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(
            ReductionKernels.Normalize)(y.Length, V(x), V(mean), V(invStd), V(gamma), V(beta), V(y), a.Channels, a.Plane);
    }

    /// <inheritdoc />
    public void BatchNormTrainForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor savedMean, Tensor savedInvStd,
        Tensor runningMean, Tensor runningVar, float momentum, float epsilon)
    {
        Grouped<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelArgs, float, float>(
            ReductionKernels.BatchNormStatistics)(PerChannel(x.Shape[1]), V(x), V(savedMean), V(savedInvStd), V(runningMean),
            V(runningVar), ChannelsOf(x), momentum, epsilon);
        Normalize(x, savedMean, savedInvStd, gamma, beta, y);
    }

    /// <inheritdoc />
    public void BatchNormEvalForward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float epsilon, Tensor y,
        Tensor savedMean, Tensor savedInvStd)
    {
        K<ArrayView<float>, ArrayView<float>, float, ArrayView<float>, ArrayView<float>>(ReductionKernels.RunningStatistics)(
            x.Shape[1], V(runningMean), V(runningVar), epsilon, V(savedMean), V(savedInvStd));
        Normalize(x, savedMean, savedInvStd, gamma, beta, y);
    }

    /// <inheritdoc />
    public void BatchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor savedMean, Tensor savedInvStd, bool batchStatistics,
        Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        var a = ChannelsOf(x);
        Grouped<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelArgs>(
            ReductionKernels.BatchNormGradientSums)(PerChannel(a.Channels), V(x), V(dy), V(savedMean), V(savedInvStd), V(dgamma),
            V(dbeta), a);
        if (dx.Length > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ChannelArgs, int>(ReductionKernels.BatchNormInputGradient)(
                dx.Length, V(x), V(dy), V(gamma), V(savedMean), V(savedInvStd), V(dgamma), V(dbeta), V(dx), a,
                batchStatistics ? 1 : 0);
    }

    /// <inheritdoc />
    public void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, float epsilon, Tensor y, Tensor savedMean, Tensor savedInvStd)
    {
        if (y.Length > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelArgs,
                float>(LayerNormKernels.Forward)(savedMean.Length, V(x), V(gamma), V(beta), V(y), V(savedMean), V(savedInvStd),
                ChannelsOf(x), epsilon);
    }

    /// <inheritdoc />
    public void LayerNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor savedMean, Tensor savedInvStd, Tensor dx, Tensor dgamma,
        Tensor dbeta)
    {
        var a = ChannelsOf(x);
        Grouped<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelArgs>(
            LayerNormKernels.ParameterGradients)(PerChannel(a.Channels), V(x), V(dy), V(savedMean), V(savedInvStd), V(dgamma),
            V(dbeta), a);
        if (dx.Length > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelArgs>(
                LayerNormKernels.InputGradient)(savedMean.Length, V(x), V(dy), V(gamma), V(savedMean), V(savedInvStd), V(dx), a);
    }

    private static LrnArgs ArgsOf(Tensor x, int size, float alpha, float beta, float k) => new()
    {
        Channels = x.Shape[1], Plane = x.Shape.ItemLength / x.Shape[1], Size = size, Alpha = alpha, Beta = beta, K = k,
    };

    /// <inheritdoc />
    public void LrnForward(Tensor x, Tensor y, Tensor scale, int size, float alpha, float beta, float k)
    {
        if (y.Length > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, LrnArgs>(LrnKernels.Forward)(
                y.Length, V(x), V(y), V(scale), ArgsOf(x, size, alpha, beta, k));
    }

    /// <inheritdoc />
    public void LrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, float alpha, float beta)
    {
        if (dx.Length > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LrnArgs>(LrnKernels.Backward)(
                dx.Length, V(x), V(y), V(scale), V(dy), V(dx), ArgsOf(x, size, alpha, beta, 0));
    }

    private static AttentionArgs AttentionOf(Tensor y, int heads, float scale) => new()
    {
        Heads = heads, Channels = y.Shape[1], Tokens = y.Shape.ItemLength / y.Shape[1], Scale = scale,
    };

    /// <inheritdoc />
    public void AttentionForward(Tensor qkv, int heads, float scale, Tensor probabilities, Tensor y)
    {
        if (y.Length == 0) return;
        var a = AttentionOf(y, heads, scale);
        K<ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionKernels.Scores)(probabilities.Length, V(qkv), V(probabilities), a);
        K<ArrayView<float>, ArrayView<float>, int>(LossKernels.Softmax)(probabilities.Length / a.Tokens, V(probabilities), V(probabilities),
            a.Tokens);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionKernels.Output)(y.Length, V(qkv), V(probabilities),
            V(y), a);
    }

    /// <inheritdoc />
    public void AttentionBackward(Tensor qkv, Tensor probabilities, Tensor dy, int heads, float scale, Tensor scratch, Tensor dqkv)
    {
        if (dy.Length == 0) return;
        var a = AttentionOf(dy, heads, scale);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionKernels.ValueGradient)(dy.Length, V(probabilities),
            V(dy), V(dqkv), a);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionKernels.ProbabilityGradient)(scratch.Length,
            V(qkv), V(dy), V(scratch), a);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(LossKernels.SoftmaxGradient)(scratch.Length / a.Tokens,
            V(probabilities), V(scratch), V(scratch), a.Tokens);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionKernels.QueryKeyGradient)(dy.Length, V(qkv),
            V(scratch), V(dqkv), a);
    }

    /// <inheritdoc />
    public void SoftmaxForward(Tensor x, Tensor y)
    {
        if (y.Length > 0)
            K<ArrayView<float>, ArrayView<float>, int>(LossKernels.Softmax)(x.Shape.N, V(x), V(y), x.Shape.ItemLength);
    }

    /// <inheritdoc />
    public void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx)
    {
        if (dx.Length > 0)
            K<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(LossKernels.SoftmaxGradient)(
                y.Shape.N, V(y), V(dy), V(dx), y.Shape.ItemLength);
    }

    // ---- losses ----

    /// <summary>losses[slot] += scale · Σ of the first <paramref name="count"/> terms, on the device.</summary>
    private void AddTerms(int count, Tensor values, int slot, double scale) =>
        Grouped<ArrayView<double>, ArrayView<float>, int, int, double>(LossKernels.AddTerms)(PerChannel(1), Terms(count), V(values), count,
            slot, scale);

    /// <inheritdoc />
    public void SoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor dLogits, Tensor losses, int slot)
    {
        int rows = logits.Shape.N;
        if (rows == 0) return;
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, int, int>(LossKernels.SoftmaxCrossEntropy)(
            rows, V(logits), V(labels), V(dLogits), Terms(rows), logits.Shape.ItemLength, rows);
        AddTerms(rows, losses, slot, 1.0 / rows);
    }

    /// <inheritdoc />
    public void PixelSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor? classWeights, int ignoreLabel, Tensor dLogits, Tensor losses,
        int slot)
    {
        if (HostOperations.Contains(nameof(PixelSoftmaxCrossEntropy)))
        {
            OnHost(nameof(PixelSoftmaxCrossEntropy), h => _host.PixelSoftmaxCrossEntropy(
                h(logits), h(labels), classWeights is null ? null : h(classWeights), ignoreLabel, h(dLogits), h(losses), slot), dLogits, losses);
            return;
        }
        int classes = logits.Shape[1], plane = logits.Shape.ItemLength / Math.Max(classes, 1), pixels = logits.Shape.N * plane;
        if (pixels == 0 || classes == 0) return;
        var g = new PixelLossArgs
        {
            Pixels = pixels, Plane = plane, Classes = classes, IgnoreLabel = ignoreLabel, Weighted = classWeights is null ? 0 : 1,
        };
        // Terms: each pixel's loss, then its weight, then the two totals the gradient divides by.
        var terms = Terms(2 * pixels + 2);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, PixelLossArgs>(LossKernels.PixelCrossEntropy)(
            pixels, V(logits), V(labels), VOrEmpty(classWeights), terms, g);
        var totals = terms.SubView(2 * pixels, 2);
        Grouped<ArrayView<double>, ArrayView<double>, ArrayView<float>, int, int>(LossKernels.PixelTotals)(PerChannel(1), terms, totals,
            V(losses), pixels, slot);
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, PixelLossArgs, ArrayView<double>>(
            LossKernels.PixelCrossEntropyGradient)(pixels, V(logits), V(labels), VOrEmpty(classWeights), V(dLogits), g, totals);
    }

    /// <inheritdoc />
    public void SigmoidFocalLoss(Tensor logits, Tensor targets, float alpha, float gamma, float scale, Tensor dLogits, Tensor losses,
        int slot) => ElementwiseLoss(4, logits, targets, null, dLogits, scale, losses, slot, alpha, gamma);

    /// <inheritdoc />
    public void WeightedAbsoluteError(Tensor predictions, Tensor targets, Tensor weights, float scale, Tensor dPredictions, Tensor losses,
        int slot) => ElementwiseLoss(3, predictions, targets, weights, dPredictions, scale, losses, slot);

    /// <inheritdoc />
    public void MulticlassHinge(Tensor scores, Tensor labels, Tensor dScores, Tensor losses, int slot)
    {
        int rows = scores.Shape.N;
        if (rows == 0) return;
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, int, int>(LossKernels.MulticlassHinge)(
            rows, V(scores), V(labels), V(dScores), Terms(rows), scores.Shape.ItemLength, rows);
        AddTerms(rows, losses, slot, 1.0 / rows);
    }

    /// <inheritdoc />
    public void MeanSquaredError(Tensor predictions, Tensor targets, Tensor dPredictions, Tensor losses, int slot) =>
        ElementwiseLoss(0, predictions, targets, null, dPredictions, 1f / predictions.Length, losses, slot);

    /// <inheritdoc />
    public void MeanAbsoluteError(Tensor predictions, Tensor targets, Tensor dPredictions, Tensor losses, int slot) =>
        ElementwiseLoss(1, predictions, targets, null, dPredictions, 1f / predictions.Length, losses, slot);

    /// <inheritdoc />
    public void BinaryCrossEntropyWithLogits(Tensor logits, Tensor targets, Tensor dLogits, Tensor losses, int slot) =>
        ElementwiseLoss(2, logits, targets, null, dLogits, 1f / logits.Length, losses, slot);

    /// <inheritdoc />
    public void CountCorrect(Tensor scores, Tensor labels, int ignoreLabel, Tensor correct, int slot)
    {
        if (labels.Length == 0) return;
        int classes = scores.Shape[1];
        K<ArrayView<float>, ArrayView<float>, ArrayView<double>, int, int, int>(LossKernels.Correct)(labels.Length, V(scores), V(labels),
            Terms(labels.Length), classes, scores.Shape.ItemLength / classes, ignoreLabel);
        AddTerms(labels.Length, correct, slot, 1);
    }

    // The elementwise losses: the kernel writes each element's term and its gradient times the scale, the terms' sum
    // times the scale goes to the slot.
    private void ElementwiseLoss(int kind, Tensor p, Tensor t, Tensor? w, Tensor grad, float scale, Tensor losses, int slot,
        float alpha = 0, float gamma = 0)
    {
        if (p.Length == 0) return;
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, int, float, float, float>(
            LossKernels.Elementwise)(p.Length, V(p), V(t), VOrEmpty(w), V(grad), Terms(p.Length), kind, scale, alpha, gamma);
        AddTerms(p.Length, losses, slot, scale);
    }

    // ---- optimizer updates ----

    /// <inheritdoc />
    public void SgdUpdate(Tensor param, Tensor grad, Tensor velocity, float learningRate, float momentum, float weightDecay, bool nesterov)
    {
        if (param.Length == 0) return;
        var step = new SgdStep { LearningRate = learningRate, Momentum = momentum, WeightDecay = weightDecay, Nesterov = nesterov ? 1 : 0 };
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, SgdStep>(ElementwiseKernels.Sgd)(
            param.Length, V(param), V(grad), V(velocity), step);
    }

    /// <inheritdoc />
    public void AdamUpdate(Tensor param, Tensor grad, Tensor m, Tensor v, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, bool decoupledWeightDecay, int step)
    {
        if (param.Length == 0) return;
        var args = new AdamStep
        {
            LearningRate = learningRate, Beta1 = beta1, Beta2 = beta2, Epsilon = epsilon, WeightDecay = weightDecay,
            BiasCorrection1 = 1 - Math.Pow(beta1, step), BiasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(beta2, step)),
            Decoupled = decoupledWeightDecay ? 1 : 0,
        };
        K<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamStep>(ElementwiseKernels.Adam)(
            param.Length, V(param), V(grad), V(m), V(v), args);
    }
}
