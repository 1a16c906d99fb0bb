using System.Text;
using LLama;
using LLama.Native;

namespace QuantPeft.Trainers.Export.Gguf;

/// <summary>
/// The k-quant mixes of a GGUF export, made by llama.cpp's own model quantizer (<c>llama_model_quantize</c>, through
/// LLamaSharp): it picks the per-tensor types of a mix (Q4_K_M keeps half of the attention-v and FFN-down matrices and the
/// output in Q6_K, and falls back to legacy types for rows that are not a multiple of 256) and computes the k-quant
/// scales, exactly as <c>llama-quantize</c> does, so the file is the one a llama.cpp user would have made.
/// </summary>
public static class LlamaCppQuantizer
{
    private static readonly object Gate = new();
    private static readonly StringBuilder Errors = new();
    private static bool _logHooked;

    /// <summary>Quantizes the GGUF file <paramref name="source"/> into <paramref name="destination"/>.</summary>
    /// <exception cref="ExportException">llama.cpp refused the file; the message carries its error lines.</exception>
    public static void Quantize(string source, string destination, GgufQuantType quant)
    {
        var ftype = quant switch
        {
            GgufQuantType.Q4_K_M => LLamaFtype.MOSTLY_Q4_K_M,
            GgufQuantType.Q5_K_M => LLamaFtype.MOSTLY_Q5_K_M,
            GgufQuantType.Q6_K => LLamaFtype.MOSTLY_Q6_K,
            _ => throw new ArgumentOutOfRangeException(nameof(quant), quant, "only the k-quant mixes go through llama.cpp"),
        };
        lock (Gate)
        {
            HookLog();
            // The quantizer's default-parameters call is a plain DllImport: load the library through LLamaSharp's resolver first.
            NativeApi.llama_max_devices();
            Errors.Clear();
            bool ok = LLamaQuantizer.Quantize(source, destination, ftype, nthread: Environment.ProcessorCount, allowRequantize: false);
            if (!ok) throw new ExportException($"llama.cpp could not quantize '{source}' to {GgufQuantTypes.Name(quant)}: {Errors.ToString().Trim()}");
        }
    }

    // llama.cpp reports every tensor it quantizes; only its warnings and errors are worth keeping, for the message.
    internal static void HookLog()
    {
        if (_logHooked) return;
        _logHooked = true;
        if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
            NativeLibraryConfig.All.WithLogCallback((level, message) =>
            {
                if (level is LLamaLogLevel.Error or LLamaLogLevel.Warning)
                    lock (Errors) Errors.Append(message);
            });
    }
}
