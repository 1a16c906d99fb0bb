using System.Text;

namespace QuantPeft.Trainers.Tokenizers;

/// <summary>
/// The tokenizer of the built-in demo model: one token per UTF-8 byte (ids 0–255, id = byte value)
/// followed by three specials, so <see cref="VocabSize"/> is 259. It needs no file, never meets an
/// unknown character and round-trips every well-formed string exactly.
/// </summary>
/// <remarks>
/// Text that is not well-formed UTF-16 (a lone surrogate) is encoded as U+FFFD (bytes EF BF BD), the
/// same replacement .NET's UTF-8 encoder makes. Id sequences that are not valid UTF-8 (a model can
/// generate any byte) decode with U+FFFD in place of each invalid sequence; <see cref="DecodeBytes"/>
/// returns the raw bytes for callers that need them unchanged.
/// </remarks>
public sealed class ByteLevelTokenizer : ITextTokenizer
{
    /// <summary>Id of the beginning-of-sequence token.</summary>
    public const int Bos = 256;

    /// <summary>Id of the end-of-sequence token.</summary>
    public const int Eos = 257;

    /// <summary>Id of the padding token.</summary>
    public const int Pad = 258;

    /// <summary>256 byte tokens plus BOS, EOS and PAD.</summary>
    public const int Size = 259;

    /// <summary>The shared instance; the tokenizer has no state.</summary>
    public static ByteLevelTokenizer Instance { get; } = new();

    /// <inheritdoc/>
    public int VocabSize => Size;

    /// <inheritdoc/>
    public int? BosId => Bos;

    /// <inheritdoc/>
    public int? EosId => Eos;

    /// <inheritdoc/>
    public int? PadId => Pad;

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var ids = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) ids[i] = bytes[i];
        return ids;
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    /// <summary>The bytes behind <paramref name="ids"/>, specials skipped.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is negative or not below <see cref="Size"/>.</exception>
    public static byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= Size)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"byte-level token ids lie in [0, {Size}); found {id}");
            if (id < 256) bytes.Add((byte)id);
        }
        return bytes.ToArray();
    }
}
