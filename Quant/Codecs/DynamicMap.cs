namespace QuantPeft.Quant.Codecs;

/// <summary>Which of bitsandbytes' two 256-entry dynamic (tree) maps an 8-bit blockwise code refers to.</summary>
public enum DynamicMap
{
    /// <summary><see cref="CodeTables.DynamicSigned"/>: general tensors, first moments, the nested absmax.</summary>
    Signed,

    /// <summary><see cref="CodeTables.DynamicUnsigned"/>: non-negative tensors such as second moments.</summary>
    Unsigned,
}

/// <summary>Helpers for <see cref="DynamicMap"/>.</summary>
public static class DynamicMaps
{
    /// <summary>The code book of <paramref name="map"/>.</summary>
    public static CodeBook Book(this DynamicMap map) => map == DynamicMap.Signed ? CodeBook.DynamicSigned : CodeBook.DynamicUnsigned;
}
