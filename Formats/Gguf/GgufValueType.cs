namespace QuantPeft.Formats.Gguf;

/// <summary>The metadata value types of GGUF (<c>gguf_type</c>), numbered as the format fixes them.</summary>
public enum GgufValueType : uint
{
    /// <summary>uint8.</summary>
    UInt8 = 0,

    /// <summary>int8.</summary>
    Int8 = 1,

    /// <summary>uint16.</summary>
    UInt16 = 2,

    /// <summary>int16.</summary>
    Int16 = 3,

    /// <summary>uint32.</summary>
    UInt32 = 4,

    /// <summary>int32.</summary>
    Int32 = 5,

    /// <summary>float32.</summary>
    Float32 = 6,

    /// <summary>bool, one byte.</summary>
    Bool = 7,

    /// <summary>A uint64 byte length, then UTF-8 bytes (no terminator).</summary>
    String = 8,

    /// <summary>An element type (uint32), a uint64 count, then the elements.</summary>
    Array = 9,

    /// <summary>uint64.</summary>
    UInt64 = 10,

    /// <summary>int64.</summary>
    Int64 = 11,

    /// <summary>float64.</summary>
    Float64 = 12,
}
