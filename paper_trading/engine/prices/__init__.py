"""Price sources behind one bulk interface, and the tick schedules that pace them."""
