namespace Ml.Cnn.Core;

/// <summary>The error function (GELU's Φ), which .NET's Math lacks.</summary>
internal static class SpecialFunctions
{
    /// <summary>
    /// erf(x) to about 1e-14, for the reference backend: its Maclaurin series below |x| = 2.5 and the continued
    /// fraction of erfc above.
    /// </summary>
    public static double Erf(double x)
    {
        double a = Math.Abs(x);
        if (a > 6) return Math.Sign(x);
        double result;
        if (a < 2.5)
        {
            // erf(x) = 2/√π · Σ (−1)ⁿ x^(2n+1) / (n! (2n + 1))
            double term = a, sum = a, square = a * a;
            for (int n = 1; n < 80 && Math.Abs(term) > 1e-17; n++)
            {
                term *= -square / n;
                sum += term / (2 * n + 1);
            }
            result = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // erfc(x) = e^(−x²)/√π · 1 / (x + (1/2) / (x + 1 / (x + (3/2) / (x + …)))), evaluated from its tail.
            double f = a;
            for (int k = 60; k >= 1; k--) f = a + k / 2.0 / f;
            result = 1 - Math.Exp(-a * a) / Math.Sqrt(Math.PI) / f;
        }
        return x < 0 ? -result : result;
    }

    /// <summary>
    /// erf(x) to 1.5e-7 from one exponential (Abramowitz and Stegun 7.1.26), for the float kernels; the GPU kernels
    /// call it too, so both backends round alike.
    /// </summary>
    public static float Erf(float x)
    {
        float a = MathF.Abs(x), t = 1 / (1 + 0.3275911f * a);
        float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        float result = 1 - poly * MathF.Exp(-a * a);
        return x < 0 ? -result : result;
    }

    /// <summary>GELU, x·Φ(x) with the exact Φ (PyTorch's default, approximate='none').</summary>
    public static float Gelu(float x) => 0.5f * x * (1 + Erf(x * 0.70710678f));

    /// <summary>GELU's slope: Φ(x) + x·φ(x).</summary>
    public static float GeluSlope(float x) => 0.5f * (1 + Erf(x * 0.70710678f)) + x * 0.39894228f * MathF.Exp(-0.5f * x * x);
}
