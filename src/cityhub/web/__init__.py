"""The operations centre: the live district page (templates/, static/), its summary and change
feed, the generated sample district, and the demo's component orchestration."""
