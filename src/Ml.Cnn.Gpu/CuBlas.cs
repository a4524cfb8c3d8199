using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Ml.Cnn.Gpu;

/// <summary>
/// The few cuBLAS v2 entry points the backend calls (create, destroy, set stream, SGEMM and strided-batched SGEMM),
/// bound at run time from whichever libcublas this machine has: CUDA 13, 12 or 11 by the loader's search, then the
/// CUDA toolkit folders, then the nvidia-cublas Python wheels' folders (where pip's PyTorch keeps its copy).
/// ILGPU.Algorithms' own binding knows only .so.10–.12. Products are row-major: C = op(A)·op(B) is computed as the
/// column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, which reads the same buffers without a copy.
/// </summary>
internal sealed unsafe class CuBlas : IDisposable
{
    private const int Success = 0, NoTranspose = 0, Transpose = 1;
    private static readonly string[] Versions = ["13", "12", "11"];

    private readonly nint _library, _helper;
    private nint _handle;
    private readonly delegate* unmanaged<nint, int> _destroy;
    private readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int> _sgemm;
    private readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int>
        _sgemmBatched;

    private CuBlas(nint library, nint helper, string path, CudaStream stream)
    {
        (_library, _helper, Path) = (library, helper, path);
        var create = (delegate* unmanaged<nint*, int>)NativeLibrary.GetExport(library, "cublasCreate_v2");
        var setStream = (delegate* unmanaged<nint, nint, int>)NativeLibrary.GetExport(library, "cublasSetStream_v2");
        _destroy = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(library, "cublasDestroy_v2");
        _sgemm = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int>)
            NativeLibrary.GetExport(library, "cublasSgemm_v2");
        _sgemmBatched = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int>)
            NativeLibrary.GetExport(library, "cublasSgemmStridedBatched");
        nint handle;
        Check(create(&handle), "cublasCreate_v2");
        _handle = handle;
        Check(setStream(_handle, stream.StreamPtr), "cublasSetStream_v2");
    }

    /// <summary>The library file that was loaded.</summary>
    public string Path { get; }

    /// <summary>
    /// cuBLAS on <paramref name="stream"/>, or null with <paramref name="report"/> saying where it was looked for.
    /// ML_CNN_CUBLAS names a library file to use instead, or "off" to use none.
    /// </summary>
    public static CuBlas? TryLoad(CudaStream stream, out string report)
    {
        string? chosen = Environment.GetEnvironmentVariable("ML_CNN_CUBLAS");
        if (chosen == "off")
        {
            report = "cuBLAS switched off (ML_CNN_CUBLAS=off)";
            return null;
        }
        var tried = new List<string>();
        foreach (var (path, helper) in Candidates(chosen))
        {
            tried.Add(path);
            // The wheels' libcublas finds its libcublasLt beside it only once that is loaded.
            nint helperHandle = helper is not null && NativeLibrary.TryLoad(helper, out var h) ? h : 0;
            if (!NativeLibrary.TryLoad(path, out var library))
            {
                if (helperHandle != 0) NativeLibrary.Free(helperHandle);
                continue;
            }
            try
            {
                report = $"cuBLAS from {path}";
                return new CuBlas(library, helperHandle, path, stream);
            }
            catch (Exception e) when (e is EntryPointNotFoundException or InvalidOperationException)
            {
                NativeLibrary.Free(library);
                if (helperHandle != 0) NativeLibrary.Free(helperHandle);
                tried[^1] += $" ({e.Message})";
            }
        }
        report = $"no cuBLAS (tried {string.Join(", ", tried)})";
        return null;
    }

    /// <summary>Library files to try, in order, each with the libcublasLt to load first where it is known.</summary>
    internal static IEnumerable<(string Path, string? Helper)> Candidates(string? chosen)
    {
        if (chosen is { Length: > 0 })
        {
            yield return (chosen, null);
            yield break;
        }
        foreach (var version in Versions) yield return ($"libcublas.so.{version}", null);
        foreach (var folder in Folders())
            foreach (var version in Versions)
            {
                string path = System.IO.Path.Combine(folder, $"libcublas.so.{version}");
                if (File.Exists(path)) yield return (path, System.IO.Path.Combine(folder, $"libcublasLt.so.{version}"));
            }
    }

    private static IEnumerable<string> Folders()
    {
        var roots = new List<string>();
        if (Environment.GetEnvironmentVariable("CUDA_HOME") is { Length: > 0 } home) roots.Add(System.IO.Path.Combine(home, "lib64"));
        roots.Add("/usr/local/cuda/lib64");
        // pip's nvidia-cublas wheels: site-packages/nvidia/cublas/lib (nvidia/cu13/lib for CUDA 13's combined wheel).
        string user = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        foreach (var prefix in new[] { "/usr/local/lib", "/usr/lib", System.IO.Path.Combine(user, ".local", "lib"), "/opt/conda/lib" })
        {
            if (!Directory.Exists(prefix)) continue;
            foreach (var python in Directory.EnumerateDirectories(prefix, "python3*"))
                foreach (var packages in new[] { "site-packages", "dist-packages" })
                    foreach (var wheel in new[] { "cublas", "cu13", "cu12" })
                        roots.Add(System.IO.Path.Combine(python, packages, "nvidia", wheel, "lib"));
        }
        return roots.Where(Directory.Exists).Distinct();
    }

    /// <summary>
    /// <paramref name="batch"/> row-major products C_i ← α·op(A_i)·op(B_i) + β·C_i (A m×k, B k×n, C m×n after op), the
    /// i-th operands starting i strides in.
    /// </summary>
    public void Gemm(int m, int n, int k, ArrayView<float> a, bool transposeA, ArrayView<float> b, bool transposeB, ArrayView<float> c,
        float alpha, float beta, int batch, long strideA, long strideB, long strideC)
    {
        int lda = transposeA ? m : k, ldb = transposeB ? k : n;
        int opB = transposeB ? Transpose : NoTranspose, opA = transposeA ? Transpose : NoTranspose;
        nint pa = Address(a), pb = Address(b), pc = Address(c);
        // cuBLAS reads k = 0 as "C ← β·C", as the tiled kernel does.
        if (batch == 1)
            Check(_sgemm(_handle, opB, opA, n, m, k, &alpha, pb, Math.Max(ldb, 1), pa, Math.Max(lda, 1), &beta, pc, Math.Max(n, 1)),
                "cublasSgemm_v2");
        else
            Check(_sgemmBatched(_handle, opB, opA, n, m, k, &alpha, pb, Math.Max(ldb, 1), strideB, pa, Math.Max(lda, 1), strideA, &beta, pc,
                Math.Max(n, 1), strideC, batch), "cublasSgemmStridedBatched");
    }

    // ILGPU 1.5 keeps a view's buffer and offset internal (its own cuBLAS binding is among ILGPU's friends). Read once
    // per product, a reflected property costs nothing beside a kernel launch.
    private static readonly PropertyInfo BufferProperty = Internal("Buffer"), IndexProperty = Internal("Index");

    private static PropertyInfo Internal(string name) =>
        typeof(ArrayView<float>).GetProperty(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
        ?? throw new MissingMemberException($"ILGPU's ArrayView<T> no longer has {name}: update CuBlas.Address for this ILGPU.");

    /// <summary>The device address of a view's first element.</summary>
    internal static nint Address(ArrayView<float> view) =>
        ((MemoryBuffer)BufferProperty.GetValue(view)!).NativePtr + (nint)((long)IndexProperty.GetValue(view)! * sizeof(float));

    private static void Check(int status, string call)
    {
        if (status != Success) throw new InvalidOperationException($"{call} failed: cuBLAS status {status} ({Describe(status)}).");
    }

    private static string Describe(int status) => status switch
    {
        1 => "not initialized",
        3 => "allocation failed",
        7 => "invalid value",
        8 => "architecture mismatch",
        11 => "mapping error",
        13 => "execution failed",
        14 => "internal error",
        15 => "not supported",
        _ => "unknown",
    };

    public void Dispose()
    {
        if (_handle != 0) _destroy(_handle);
        _handle = 0;
        NativeLibrary.Free(_library);
        if (_helper != 0) NativeLibrary.Free(_helper);
    }
}
