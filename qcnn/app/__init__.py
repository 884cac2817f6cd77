"""What the Streamlit pages call: loading results, charts, verdicts. No torch at import time."""
