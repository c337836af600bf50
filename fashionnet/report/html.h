// What the two HTML pages (the run report, report.cpp, and the `fashionnet search` page, search_page.cpp)
// and the SVG charts (plot.cpp) share: the one escaper for text and attribute values, and the one
// stylesheet. Each page marks its <body> with a class ("report" or "search") for the few rules that differ.
#pragma once
#include <string>

namespace fn::fashionnet {

// &, <, >, " and ' as character references (&amp; &lt; &gt; &quot; &#39;): safe in HTML and SVG (XML) text
// and in attribute values quoted with either quote.
std::string html_escape(const std::string& s);

// The shared stylesheet as a <style> element (with a trailing newline), for the <head> of either page.
const std::string& page_style();

}  // namespace fn::fashionnet
