"""Tianmu (天目): emergency-management command platform."""
