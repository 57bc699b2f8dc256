"""Feedback alignment: aggregated novel-exposure feedback -> alignment scorer for best-of-n."""
