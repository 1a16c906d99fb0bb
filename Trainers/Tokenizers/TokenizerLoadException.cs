using QuantPeft.Formats;

namespace QuantPeft.Trainers.Tokenizers;

/// <summary>A tokenizer file is missing, unreadable or not in a supported format. The message names the file.</summary>
public sealed class TokenizerLoadException : QuantPeftException
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public TokenizerLoadException(string path, string problem)
        : base($"tokenizer file '{path}': {problem}") => FilePath = path;

    /// <summary>Creates the exception for <paramref name="path"/> with the error that caused it.</summary>
    public TokenizerLoadException(string path, string problem, Exception inner)
        : base($"tokenizer file '{path}': {problem}", inner) => FilePath = path;

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }
}
