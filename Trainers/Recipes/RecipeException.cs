using QuantPeft.Formats;

namespace QuantPeft.Trainers.Recipes;

/// <summary>A fine-tuning run that cannot start as configured; the message names the flag or file.</summary>
public sealed class RecipeException : QuantPeftException
{
    /// <summary>Creates the exception.</summary>
    public RecipeException(string message) : base(message) { }
}
